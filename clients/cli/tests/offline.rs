//! What the client says before any login, with the real binary.

mod common;

use common::Device;

#[test]
fn commands_that_need_a_login_say_how_to_log_in() {
    let d = Device::new("fresh");
    for args in [
        &["customer", "list"][..],
        &["vehicle", "receive", "LSVAU2180N2183294", "--model", "X"],
        &["status"],
        &["sync"],
        &["report", "stock"],
        &["conflicts", "list"],
    ] {
        let err = d.fails(args);
        assert!(
            err.contains("not logged in") && err.contains("dealersync login --server"),
            "{args:?}: {err}"
        );
    }
    // Nothing was written to the home but the directory itself.
    assert!(!d.home().join("config.json").exists());
}

#[test]
fn login_to_an_unreachable_server_fails_clearly_and_stores_nothing() {
    let d = Device::new("offline");
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsaSIsInJvbGUiOiJjb25zdWx0YW50Iiwic2l0ZSI6InJzLTEiLCJleHAiOjk5OTk5OTk5OTksImp0aSI6IngifQ.sig";
    // Port 9 (discard) on localhost: nothing listens there in a test environment.
    let err = d.fails(&["login", "--server", "http://127.0.0.1:9", "--token", token]);
    assert!(err.contains("cannot reach the server"), "{err}");
    assert!(!d.home().join("config.json").exists());
    let err = d.fails(&[
        "login",
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "nonsense",
    ]);
    assert!(err.contains("not a JWT"), "{err}");
}

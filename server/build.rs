//! Rebuilds the server when the field app's committed build changes: `web_app.rs`
//! embeds `clients/web/dist` with `include_dir!`, which cargo does not track by itself.

fn main() {
    println!("cargo:rerun-if-changed=../clients/web/dist");
}

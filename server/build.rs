//! Rebuilds the server when an embedded file changes: the board and console pages
//! under `web/` and the field app's committed build `../clients/web/dist` are embedded
//! with `include_dir!`, which on stable Rust does not tell cargo which files it read.

fn main() {
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-changed=../clients/web/dist");
    println!("cargo:rerun-if-changed=build.rs");
}

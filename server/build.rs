//! Rebuilds the server when a file under `web/` changes: the pages are embedded with
//! `include_dir!`, which on stable Rust does not tell cargo which files it read.

fn main() {
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-changed=build.rs");
}

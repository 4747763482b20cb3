//! Rebuild when migration files change: `sqlx::migrate!` embeds them at
//! compile time but cannot tell Cargo to track the directory on stable Rust.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

//! Build script: embedded migrations trigger a rebuild when they change.
// Rebuild when a migration changes: they are embedded with `embed_migrations!`.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

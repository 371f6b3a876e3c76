//! bpf-linker is an undeclared dependency of this crate: rebuild when it changes.

fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}

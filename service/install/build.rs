//! The project's rolls are built into the binary (`include_dir!`, src/builtin.rs), which cargo
//! does not see as inputs: an edited node file must rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=../../rolls");
}

//! Embeds the shipped general model (`models/general.laq`) when the checkout has it: the
//! cfg `serlaq_general_model` turns on the `include_bytes!` in `src/general.rs`, so a
//! branch without the file still builds (the name `general` then says no model is shipped).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(serlaq_general_model)");
    println!("cargo::rerun-if-changed=models/general.laq");
    println!("cargo::rerun-if-changed=models");
    if std::path::Path::new("models/general.laq").is_file() {
        println!("cargo::rustc-cfg=serlaq_general_model");
    }
}

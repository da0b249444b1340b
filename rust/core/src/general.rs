//! The shipped general model: the `.laq` file `models/general.laq` (trained by
//! `configs/general.yaml`, described in `docs/model-card.md`), embedded in the library so
//! that the name [`GENERAL`] works wherever a model path is taken, with no file to find.

/// The name that selects the shipped general model instead of a path.
pub const GENERAL: &str = "general";

/// The general model's `.laq` bytes, or `None` in a build whose checkout has no
/// `models/general.laq` (see `build.rs`).
pub fn general_model_bytes() -> Option<&'static [u8]> {
    #[cfg(serlaq_general_model)]
    {
        Some(include_bytes!("../models/general.laq"))
    }
    #[cfg(not(serlaq_general_model))]
    {
        None
    }
}

/// Whether `source` (a model argument as given) names the general model.
pub fn is_general(source: &str) -> bool {
    source == GENERAL
}

/// The one line a user sees when `general` is asked for in a build without it.
pub const NOT_SHIPPED: &str =
    "general: this build of serlaq ships no general model (models/general.laq was absent when it was built); \
     pass a .laq file instead";

//! Where a model comes from ([`ModelSource`]) and loading it with one-line errors that
//! name it. A new kind of source (the shipped `general` model) is one more variant and
//! one more arm in [`ModelSource::load`].

use crate::format::{LaqError, LaqFile};
use crate::model::Model;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// A `.laq` model to load.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A file on disk.
    Path(PathBuf),
    /// A file's bytes; `name` is how errors and `info` call it (e.g. `<bytes>`).
    Bytes { name: String, bytes: Vec<u8> },
}

impl ModelSource {
    /// How errors and `info` name the model (a path as given).
    pub fn name(&self) -> String {
        match self {
            ModelSource::Path(p) => p.display().to_string(),
            ModelSource::Bytes { name, .. } => name.clone(),
        }
    }

    /// Reads and validates the model. The error is one line naming the source (a panic
    /// inside the reader is caught and becomes that line).
    pub fn load(self) -> Result<Model, LoadError> {
        let origin = self.name();
        let r = catch_unwind(AssertUnwindSafe(|| {
            let file = match self {
                ModelSource::Path(p) => LaqFile::open(&p),
                ModelSource::Bytes { bytes, .. } => LaqFile::from_bytes(bytes),
            };
            let file = file.map_err(|e| match e {
                LaqError::Io { path, source } => LoadError::Io { message: format!("{}: {source}", path.display()), source },
                other => LoadError::Invalid(format!("{origin}: {other}")),
            })?;
            Model::from_laq(file).map_err(|e| LoadError::Invalid(format!("{origin}: {e}")))
        }));
        r.unwrap_or_else(|p| Err(LoadError::Invalid(format!("{origin}: {}", panic_text(&*p)))))
    }
}

/// Why a model did not load; `Display` is the one line to show.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read (missing, a directory, no permission).
    Io { message: String, source: std::io::Error },
    /// The bytes are not a valid `.laq` model.
    Invalid(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io { message, .. } | LoadError::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for LoadError {}

/// The line a caught panic becomes (its message, if it has one).
pub fn panic_text(p: &(dyn Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error in serlaq (please report): {what}")
}

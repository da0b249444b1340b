//! Where a model comes from ([`ModelSource`]) and loading it with one-line errors that
//! name it. A new kind of source (the shipped `general` model) is one more variant and
//! one more arm in [`ModelSource::load`].

use crate::format::{LaqError, LaqFile};
use crate::general;
use crate::model::Model;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The file `serlaq fit` writes its compressed model to, inside the run folder.
pub const RUN_MODEL: &str = "model.laq";

/// Why `out` may not take an adapted copy of the model `model` names (as typed), or None: it
/// is the model's own file (a run folder's `model.laq` included), so the input would not stay
/// untouched; or the model is the shipped `general` and `out` is spelled `general`, a file
/// that every command would read as the shipped model again (only `./general` reaches it).
pub fn adapt_output_clash(model: &Path, out: &Path) -> Option<String> {
    if ModelSource::from_arg(model).is_general() {
        return ModelSource::from_arg(out).is_general().then(|| {
            format!(
                "--out: {} is the shipped model's name, so a file called that would be read back as the shipped \
                 model (only ./{0} reaches the file); give the adapted model another name",
                out.display()
            )
        });
    }
    let file = model_file(model).ok()?;
    let same = matches!((std::fs::canonicalize(&file), std::fs::canonicalize(out)), (Ok(a), Ok(b)) if a == b);
    same.then(|| {
        format!(
            "--out: {} is the model being adapted; write the adapted model to a new file (the input stays untouched)",
            out.display()
        )
    })
}

/// The model file a path names: the path itself, or for a folder (a run folder, given where a
/// model is taken) its `model.laq`, else its one `.laq` file; a folder with none, or with
/// several and no `model.laq`, is one line saying so.
pub fn model_file(path: &Path) -> Result<PathBuf, String> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let run_model = path.join(RUN_MODEL);
    if run_model.is_file() {
        return Ok(run_model);
    }
    let entries = std::fs::read_dir(path).map_err(|e| format!("{}: cannot read the folder ({e})", path.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("laq")))
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        // a run trained with --no-compress has its checkpoint: say how to compress it
        0 if path.join("model.ckpt").is_file() => Err(format!(
            "{}: a run folder with no {RUN_MODEL} (trained with --no-compress): serlaq compress --checkpoint {}",
            path.display(),
            path.join("model.ckpt").display()
        )),
        0 => Err(format!("{}: a folder with no .laq model in it", path.display())),
        n => {
            let names: Vec<String> =
                found.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into()).collect();
            Err(format!(
                "{}: a folder with {n} .laq models ({}): name the one to use",
                path.display(),
                names.join(", ")
            ))
        }
    }
}

/// How every command's help names its model argument, in both CLIs.
pub const MODEL_HELP: &str = "packed model file (.laq), a run folder (its model.laq) or `general` (the shipped model)";

/// A `.laq` model to load.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A file on disk.
    Path(PathBuf),
    /// A file's bytes; `name` is how errors and `info` call it (e.g. `<bytes>`).
    Bytes { name: String, bytes: Vec<u8> },
    /// The general model shipped inside the library ([`general::GENERAL`]).
    General,
}

impl ModelSource {
    /// A model argument as a user types it: the name `general` selects the shipped
    /// general model, anything else is a path (`./general` for a file of that name; a run
    /// folder for its model, [`model_file`]).
    pub fn from_arg(arg: impl Into<PathBuf>) -> ModelSource {
        let path: PathBuf = arg.into();
        if path.to_str().is_some_and(general::is_general) {
            ModelSource::General
        } else {
            ModelSource::Path(path)
        }
    }

    /// Whether this is the shipped model (named, not a path).
    pub fn is_general(&self) -> bool {
        matches!(self, ModelSource::General)
    }

    /// How errors and `info` name the model (a path as given).
    pub fn name(&self) -> String {
        match self {
            ModelSource::Path(p) => p.display().to_string(),
            ModelSource::Bytes { name, .. } => name.clone(),
            ModelSource::General => general::GENERAL.to_string(),
        }
    }

    /// Reads and validates the model. The error is one line naming the source (a panic
    /// inside the reader is caught and becomes that line).
    pub fn load(self) -> Result<Model, LoadError> {
        // a run folder is read as its model file, and errors name that file
        let source = match self {
            ModelSource::Path(p) => ModelSource::Path(model_file(&p).map_err(LoadError::Invalid)?),
            other => other,
        };
        let origin = source.name();
        let r = catch_unwind(AssertUnwindSafe(|| {
            let file = match source {
                ModelSource::Path(p) => LaqFile::open(&p),
                ModelSource::Bytes { bytes, .. } => LaqFile::from_bytes(bytes),
                ModelSource::General => match general::general_model_bytes() {
                    Some(b) => LaqFile::from_bytes(b.to_vec()),
                    None => return Err(LoadError::Invalid(general::NOT_SHIPPED.to_string())),
                },
            };
            let file = file.map_err(|e| match e {
                LaqError::Io { path, source } => LoadError::Io { message: model_io_error(&path, &source), source },
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

/// The line for a model file that cannot be read, in every face: `PATH: model file not
/// found`, `... is a directory, not a .laq model file`, `... cannot read model file (why)`.
pub fn model_io_error(path: &Path, err: &std::io::Error) -> String {
    let at = path.display();
    match err.kind() {
        std::io::ErrorKind::NotFound => format!("{at}: model file not found"),
        std::io::ErrorKind::IsADirectory => format!("{at}: is a directory, not a .laq model file"),
        _ => format!("{at}: cannot read model file ({})", super::files::os_words(err)),
    }
}

/// A caught panic's message, if it has one.
pub fn panic_message(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The line a caught panic becomes.
pub fn panic_text(p: &(dyn Any + Send)) -> String {
    format!("internal error in serlaq (please report): {}", panic_message(p))
}

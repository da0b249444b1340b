//! Which files a batch runs on, and on how many threads: the one definition every face
//! (the Python API and CLI, `serlaq-rt`, the server) uses.
//!
//! A directory is searched recursively for [`SUFFIXES`] (symlinked files are taken,
//! symlinked directories are not descended, as Python's `Path.rglob`); its files come
//! sorted. A folder that cannot be read (no permission), or an audio-named link inside one
//! that leads nowhere, is an input error naming it, not skipped in silence: its files would
//! be missing from the results with no word. A file named explicitly is always
//! tried, whatever its suffix. Paths are written as `pathlib` writes them (`./a.wav` is
//! `a.wav`, `dir/` is `dir`), and each path comes once, at its first place. `-` is standard
//! input ([`STDIN_PATH`]); a file called `-` keeps its `./`.

use crate::audio::{STDIN_PATH, SUFFIXES};
use std::collections::HashSet;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

/// An input that gives no file: the path as written, and the one-line message.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    pub path: String,
    pub message: String,
}

/// Files and directories -> (audio files, input errors).
pub fn find_audio_files(inputs: &[OsString]) -> (Vec<PathBuf>, Vec<InputError>) {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut errors = Vec::new();
    for item in inputs {
        if item == STDIN_PATH {
            files.push(PathBuf::from(STDIN_PATH));
            continue;
        }
        if item.is_empty() {
            // pathlib reads '' as '.': a blank argument would search the whole folder
            errors.push(InputError { path: String::new(), message: "'': an empty path names no file".into() });
            continue;
        }
        let p = pathlib(Path::new(item));
        let shown = p.display().to_string();
        if p.is_dir() {
            let mut found = Vec::new();
            let mut inside = Vec::new();
            walk(&p, &mut found, &mut inside);
            found.sort_by(|a: &PathBuf, b| a.as_os_str().cmp(b.as_os_str()));
            inside.sort_by(|a, b| a.path.cmp(&b.path));
            if found.is_empty() && inside.is_empty() {
                errors.push(InputError {
                    path: shown.clone(),
                    message: format!("{shown}: directory holds no audio files ({})", suffix_list()),
                });
            }
            errors.extend(inside);
            files.extend(found);
        } else if p.exists() {
            // bare, `-` would name standard input
            files.push(if p.as_os_str() == STDIN_PATH { Path::new(".").join(p) } else { p });
        } else {
            errors.push(InputError { path: shown.clone(), message: format!("{shown}: {}", missing_reason(&p)) });
        }
    }
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(f.clone()));
    (files, errors)
}

/// Why a path that does not exist as a file or folder cannot be read: missing, a link to
/// nothing (or a loop of links), or a folder on the way that may not be entered.
fn missing_reason(p: &Path) -> String {
    let Err(err) = std::fs::metadata(p) else { return "no such file or directory".into() };
    if std::fs::symlink_metadata(p).is_ok() {
        return match err.kind() {
            ErrorKind::NotFound => "a link to a file that does not exist".into(),
            _ => format!("a link that cannot be followed ({})", os_words(&err)),
        };
    }
    match err.kind() {
        ErrorKind::PermissionDenied => "permission denied (a folder on its path cannot be entered)".into(),
        ErrorKind::NotFound => "no such file or directory".into(),
        _ => os_words(&err),
    }
}

/// An OS error's words, lower case, without "(os error N)".
pub(crate) fn os_words(err: &std::io::Error) -> String {
    let text = err.to_string();
    let words = text.split(" (os error").next().unwrap_or(&text);
    // the OS's words are ASCII; Unicode case tables would cost the wasm module a kilobyte
    let mut chars = words.chars();
    chars.next().map_or_else(String::new, |c| std::iter::once(c.to_ascii_lowercase()).chain(chars).collect())
}

/// Threads for a batch of `n_files`: `requested` when given, otherwise every core;
/// never more than the files (at least 1).
pub fn resolve_threads(requested: Option<usize>, n_files: usize) -> usize {
    let n = requested.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    n.min(n_files).max(1)
}

/// `.aif, .aiff, ...`: the suffixes sorted, with the dot (the message of an empty directory).
pub fn suffix_list() -> String {
    let mut s: Vec<String> = SUFFIXES.iter().map(|x| format!(".{x}")).collect();
    s.sort();
    s.join(", ")
}

pub(super) fn is_audio_name(p: &Path) -> bool {
    // pathlib's suffix: a name starting with its only dot ('.wav') has none
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| SUFFIXES.iter().any(|s| s.eq_ignore_ascii_case(e)))
}

/// Collects the audio files under `dir`, and an error for each folder that cannot be read
/// and each audio-named link that leads nowhere: their files would otherwise be missing
/// from the results with no word.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            let at = dir.display().to_string();
            let message = format!("{at}: cannot read this folder ({}); its files are left out", os_words(&e));
            return errors.push(InputError { path: at, message });
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let file_type = entry.file_type();
        if file_type.as_ref().is_ok_and(|t| t.is_dir()) {
            walk(&path, out, errors);
        } else if !is_audio_name(&path) {
            continue;
        } else if path.is_file() {
            out.push(path);
        } else if file_type.is_ok_and(|t| t.is_symlink()) && !path.exists() {
            let at = path.display().to_string();
            errors.push(InputError { message: format!("{at}: {}", missing_reason(&path)), path: at });
        }
    }
}

/// The path as `str(pathlib.Path(p))`: empty and `.` components dropped, no trailing
/// slash, `.` for nothing at all.
pub fn pathlib(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        if c != Component::CurDir {
            out.push(c.as_os_str());
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pathlib_spelling() {
        for (given, want) in [
            ("./a.wav", "a.wav"),
            ("dir/", "dir"),
            ("a//b/./c.wav", "a/b/c.wav"),
            (".", "."),
            ("./", "."),
            ("../x", "../x"),
            ("/abs/./p", "/abs/p"),
        ] {
            assert_eq!(pathlib(Path::new(given)), PathBuf::from(want), "{given}");
        }
    }

    #[test]
    fn suffixes() {
        assert!(is_audio_name(Path::new("x/A.WAV")));
        assert!(is_audio_name(Path::new("a.tar.flac")));
        assert!(!is_audio_name(Path::new(".wav")));
        assert!(!is_audio_name(Path::new("a.txt")));
        assert!(suffix_list().starts_with(".aif, .aifc, .aiff"));
        assert!(is_audio_name(Path::new("old.AIFC")));
    }

    #[cfg(unix)]
    #[test]
    fn a_path_that_cannot_be_read_says_why() {
        let dir = std::env::temp_dir().join(format!("serlaq-links-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (dangling, a, b) = (dir.join("gone.wav"), dir.join("a.wav"), dir.join("b.wav"));
        std::os::unix::fs::symlink(dir.join("moved.wav"), &dangling).unwrap();
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let inputs: Vec<OsString> =
            [&dangling, &a, &dir.join("none.wav")].iter().map(|p| p.as_os_str().into()).collect();
        let (files, errors) = find_audio_files(&inputs);
        assert!(files.is_empty());
        let why: Vec<&str> = errors.iter().map(|e| e.message.rsplit(".wav: ").next().unwrap()).collect();
        assert_eq!(why[0], "a link to a file that does not exist");
        assert_eq!(why[1], "a link that cannot be followed (too many levels of symbolic links)");
        assert_eq!(why[2], "no such file or directory");
        std::fs::remove_dir_all(&dir).ok();
        let (files, errors) = find_audio_files(&["".into()]);
        assert!(files.is_empty(), "an empty argument searches nothing");
        assert_eq!(errors[0].message, "'': an empty path names no file");
    }

    #[cfg(unix)]
    #[test]
    fn a_dangling_link_in_a_searched_folder_is_named() {
        let dir = std::env::temp_dir().join(format!("serlaq-walk-links-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/ok.wav"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.join("moved.wav"), dir.join("sub/gone.wav")).unwrap();
        std::os::unix::fs::symlink(dir.join("moved.txt"), dir.join("sub/notes.txt")).unwrap();
        let (files, errors) = find_audio_files(&[dir.as_os_str().into()]);
        assert_eq!(files, vec![dir.join("sub/ok.wav")]);
        let gone = dir.join("sub/gone.wav").display().to_string();
        assert_eq!(
            errors,
            vec![InputError { message: format!("{gone}: a link to a file that does not exist"), path: gone }]
        );
        std::fs::remove_file(dir.join("sub/ok.wav")).unwrap();
        let (files, errors) = find_audio_files(&[dir.as_os_str().into()]);
        assert!(files.is_empty());
        assert_eq!(errors.len(), 1, "the link is named, not 'holds no audio files': {errors:?}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

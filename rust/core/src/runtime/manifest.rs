//! A CSV manifest: rows `path[,label[,speaker]]`, a header optional (with one, the path,
//! label and speaker columns are found by name, [`PATH_COLUMNS`], [`LABEL_COLUMNS`],
//! [`SPEAKER_COLUMNS`], in any order among other columns); cells cut at commas, or at the `;` or tab of a spreadsheet's export
//! ([`delimiter`]). Relative paths are relative to the manifest's own folder, never to the
//! working directory; `~/` is the home folder. One reader for training and evaluation corpora
//! ([`manifest_rows`], labels kept) and for adaptation ([`manifest_paths`], labels ignored,
//! adaptation being unsupervised): `serlaq fit/evaluate --manifest`, `serlaq adapt`,
//! `LaqModel.adapt` and `serlaq-rt adapt`.

use super::files::{find_audio_files, is_audio_name, pathlib, InputError};
use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The most a manifest may hold. A million rows of paths fit in far less; a larger file is
/// not a manifest, and is refused before it is read into memory.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// The header names of the path column (a header is known by one of them), as
/// [`column_name`] spells them: `FileName` (MSP-Podcast's), `file_path`, `wav`, ...
pub const PATH_COLUMNS: [&str; 10] =
    ["path", "file", "filename", "filepath", "audio", "audiofile", "audiopath", "wav", "wavfile", "wavpath"];
/// The header names of the label column: `EmoClass` (MSP-Podcast's), `emotion`, ...
pub const LABEL_COLUMNS: [&str; 6] = ["label", "emotion", "emoclass", "emotionclass", "class", "category"];
/// The header names of the speaker column: `SpkrID` (MSP-Podcast's), `speaker_id`, `actor`, ...
pub const SPEAKER_COLUMNS: [&str; 7] = ["speaker", "speakerid", "spkrid", "spkid", "spk", "actor", "actorid"];

/// A header cell as the column tables spell it: lower case, without quotes, spaces, `_` or `-`.
fn column_name(cell: &str) -> String {
    cell.trim()
        .trim_matches('"')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// One row of a manifest. A cell left empty (or a row too short to hold it) is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    /// The line the row starts on (1-based, the header counted), for errors.
    pub line: u64,
    /// The audio path, resolved against the manifest's folder.
    pub path: Option<PathBuf>,
    /// The label as written (trimmed); mapping it to a model's labels is the caller's.
    pub label: Option<String>,
    /// The speaker as written (trimmed).
    pub speaker: Option<String>,
}

/// The rows of `manifest` in its order (blank rows and the header left out), or one line
/// naming the manifest and what is wrong with it: unreadable, over [`MAX_MANIFEST_BYTES`],
/// not UTF-8, not CSV, or no rows after the header.
pub fn manifest_rows(manifest: &Path) -> Result<Vec<ManifestRow>, String> {
    let manifest = &pathlib(manifest); // named as every other input is (`./room.csv` is `room.csv`)
    let shown = manifest.display();
    let text = read_text(manifest).map_err(|why| format!("{shown}: {why}"))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter(&text))
        .from_reader(text.as_bytes());
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("{shown}: cannot read manifest ({e})"))?;
        if record.iter().any(|cell| !cell.trim().is_empty()) {
            records.push(record);
        }
    }
    let Some(first) = records.first() else {
        return Err(format!("{shown}: manifest has no rows"));
    };
    let header: Vec<String> = first.iter().map(column_name).collect();
    let named = |names: &[&str]| header.iter().position(|c| names.contains(&c.as_str()));
    let (columns, skip) = match named(&PATH_COLUMNS) {
        Some(path) => ([Some(path), named(&LABEL_COLUMNS), named(&SPEAKER_COLUMNS)], 1),
        None => ([Some(0), Some(1), Some(2)], 0),
    };
    let folder = manifest.parent().unwrap_or(Path::new(""));
    let rows: Vec<ManifestRow> = records[skip..]
        .iter()
        .map(|record| {
            let cell = |column: Option<usize>| {
                column.and_then(|c| record.get(c)).map(str::trim).filter(|c| !c.is_empty()).map(str::to_string)
            };
            ManifestRow {
                line: record.position().map_or(0, |p| line_of(&text, p)),
                path: cell(columns[0]).map(|p| resolve(folder, &p)),
                label: cell(columns[1]),
                speaker: cell(columns[2]),
            }
        })
        .collect();
    if rows.is_empty() {
        return Err(format!("{shown}: manifest names no audio files"));
    }
    Ok(rows)
}

/// The cell separator: `,`, or the `;` a spreadsheet writes where the decimal mark is a
/// comma (German, French Excel), or a tab (a TSV). `;` or tab is taken only when the first
/// row has no comma and, cut at it, one of the first two rows is a header naming the path
/// column or starts with an audio file's name that the whole row is not: a path holding a
/// `;` stays one path.
fn delimiter(text: &str) -> u8 {
    // the first two rows: a header in words of its own ("Datei;Label") decides nothing
    let rows: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(2).collect();
    if rows.first().is_none_or(|first| first.contains(',')) {
        return b',';
    }
    let bare = |cell: &str| cell.trim().trim_matches('"').to_lowercase();
    let audio = |cell: &str| is_audio_name(Path::new(&bare(cell)));
    for sep in [';', '\t'] {
        let cut = |row: &str| {
            let cells: Vec<&str> = row.split(sep).collect();
            let header = cells.iter().any(|c| PATH_COLUMNS.contains(&column_name(c).as_str()));
            cells.len() > 1 && (header || (audio(cells[0]) && !audio(row)))
        };
        if rows.iter().any(|row| cut(row)) {
            return sep as u8;
        }
    }
    b','
}

/// The audio paths `manifest` lists, in its order, or one line naming the manifest and
/// what is wrong with it. Labels and speakers are ignored, and so are rows without a path.
pub fn manifest_paths(manifest: &Path) -> Result<Vec<PathBuf>, String> {
    let paths: Vec<PathBuf> = manifest_rows(manifest)?.into_iter().filter_map(|row| row.path).collect();
    if paths.is_empty() {
        return Err(format!("{}: manifest names no audio files", pathlib(manifest).display()));
    }
    Ok(paths)
}

/// The 1-based line a record starts on. The csv crate places a record that follows blank
/// lines on the first of them: those are counted here (only the blank run is read, so a
/// manifest of many rows stays linear).
fn line_of(text: &str, at: &csv::Position) -> u64 {
    let after = text.as_bytes().get(at.byte() as usize..).unwrap_or(&[]);
    let blank = after.iter().take_while(|b| matches!(b, b'\n' | b'\r')).filter(|&&b| b == b'\n').count();
    at.line() + blank as u64
}

/// A manifest's path cell as a path: `~/` from the home folder, a relative one from the
/// manifest's folder.
fn resolve(folder: &Path, cell: &str) -> PathBuf {
    let home = cell.strip_prefix("~/").and_then(|rest| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(rest)));
    let p = home.unwrap_or_else(|| PathBuf::from(cell));
    pathlib(&if p.is_absolute() { p } else { folder.join(p) })
}

/// The audio files of `inputs` (files, and folders searched as [`find_audio_files`] does)
/// followed by those `manifest` lists: each file once, at its first place, however it is
/// spelled (`room/a.wav` and a manifest's `lists/../room/a.wav` are one clip, not two).
/// An unreadable manifest is the error; a missing input is one of the input errors.
pub fn find_listed_audio_files(
    inputs: &[OsString],
    manifest: Option<&Path>,
) -> Result<(Vec<PathBuf>, Vec<InputError>), String> {
    let listed = match manifest {
        Some(m) => manifest_paths(m)?,
        None => Vec::new(),
    };
    let (mut files, errors) = find_audio_files(inputs);
    files.extend(listed);
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    Ok((files, errors))
}

/// The manifest's text (UTF-8, a byte-order mark dropped), or why it cannot be had.
fn read_text(manifest: &Path) -> Result<String, String> {
    let file = std::fs::File::open(manifest).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "manifest not found".to_string(),
        _ => format!("cannot read manifest ({e})"),
    })?;
    let meta = file.metadata().map_err(|e| format!("cannot read manifest ({e})"))?;
    if meta.is_dir() {
        return Err("is a directory, not a manifest (a CSV file of path[,label[,speaker]] rows)".to_string());
    }
    let too_large = || format!("manifest is larger than {} MiB: not a list of audio paths", MAX_MANIFEST_BYTES >> 20);
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    // `take` also bounds a file that grows while it is read, and a pipe, whose size is unknown
    file.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read manifest ({e})"))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_large());
    }
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    match std::str::from_utf8(body) {
        Ok(text) => Ok(text.to_string()),
        // e.g. an audio file given as the manifest
        Err(e) => {
            Err(format!("not a manifest: not UTF-8 text ({e}); a manifest is CSV text, rows path[,label[,speaker]]"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder of this test's own under the system's temporary directory.
    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("serlaq-manifest-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn paths_of(name: &str, text: &[u8]) -> Result<Vec<PathBuf>, String> {
        let dir = folder(name);
        let manifest = dir.join("room.csv");
        std::fs::write(&manifest, text).unwrap();
        let got = manifest_paths(&manifest);
        std::fs::remove_dir_all(&dir).unwrap();
        got.map(|paths| paths.iter().map(|p| p.strip_prefix(&dir).unwrap_or(p).to_path_buf()).collect())
    }

    #[test]
    fn rows_relative_to_the_manifest_labels_ignored() {
        let text = b"clips/a.wav,angry,s1\n\n ./clips/b.wav , sad\n/abs/c.wav\n,,\n";
        let want = ["clips/a.wav", "clips/b.wav", "/abs/c.wav"].map(PathBuf::from);
        assert_eq!(paths_of("plain", text).unwrap(), want);
    }

    #[test]
    fn a_header_names_the_path_column() {
        let text = "\u{feff}Speaker,Label,PATH\ns1,angry,a.wav\ns2,sad,\"b, c.wav\"\n";
        assert_eq!(paths_of("header", text.as_bytes()).unwrap(), ["a.wav", "b, c.wav"].map(PathBuf::from));
        let text = b"file,label\nx.flac,happy\n";
        assert_eq!(paths_of("file", text).unwrap(), [PathBuf::from("x.flac")]);
    }

    #[test]
    fn rows_keep_label_speaker_and_line() {
        let dir = folder("rows");
        let manifest = dir.join("corpus.csv");
        std::fs::write(&manifest, "Speaker,Emotion,File\n\ns1,angry,a.wav\ns2,,\"b\nc.wav\"\n,sad,\n~/d.wav\n")
            .unwrap();
        let rows = manifest_rows(&manifest).unwrap();
        let row = |line, path: Option<PathBuf>, label: Option<&str>, speaker: Option<&str>| ManifestRow {
            line,
            path,
            label: label.map(str::to_string),
            speaker: speaker.map(str::to_string),
        };
        let home = PathBuf::from(std::env::var_os("HOME").unwrap());
        let want = [
            row(3, Some(dir.join("a.wav")), Some("angry"), Some("s1")),
            row(4, Some(dir.join("b\nc.wav")), None, Some("s2")),
            // a row without a path is kept, for the caller to name its line
            row(6, None, Some("sad"), None),
            // the header named the columns: this row's one cell is the speaker's
            row(7, None, None, Some("~/d.wav")),
        ];
        assert_eq!(rows, want);
        std::fs::write(&manifest, "a.wav,happy,s1\n~/d.wav,sad\nx.wav\n").unwrap();
        let want = [
            row(1, Some(dir.join("a.wav")), Some("happy"), Some("s1")),
            row(2, Some(home.join("d.wav")), Some("sad"), None),
            row(3, Some(dir.join("x.wav")), None, None),
        ];
        assert_eq!(manifest_rows(&manifest).unwrap(), want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corpus_label_files_header_names_its_columns() {
        // MSP-Podcast's labels_consensus.csv, and the spellings other corpora's tables use
        let dir = folder("corpus-header");
        let manifest = dir.join("labels.csv");
        let cells = |text: &str| {
            std::fs::write(&manifest, text).unwrap();
            let rows = manifest_rows(&manifest).unwrap();
            rows.into_iter().map(|r| (r.path.unwrap(), r.label, r.speaker)).collect::<Vec<_>>()
        };
        let want =
            |label: &str, speaker: &str| vec![(dir.join("a.wav"), Some(label.to_string()), Some(speaker.to_string()))];
        let msp = "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set
a.wav,A,5.2,2.0,5.0,127,Female,Train
";
        assert_eq!(cells(msp), want("A", "127"));
        assert_eq!(
            cells(
                "speaker_id;Class;File Path
s1;sad;a.wav
"
            ),
            want("sad", "s1")
        );
        assert_eq!(
            cells(
                "Actor,Audio-File,Category
12,a.wav,fear
"
            ),
            want("fear", "12")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_spreadsheets_semicolons_or_tabs_cut_the_cells() {
        // German or French Excel saves "CSV" with semicolons; a TSV has tabs; CRLF either way
        let dir = folder("separators");
        let manifest = dir.join("corpus.csv");
        let rows = |text: &str| {
            std::fs::write(&manifest, text).unwrap();
            manifest_rows(&manifest).unwrap().into_iter().map(|r| (r.path, r.label)).collect::<Vec<_>>()
        };
        let at = |p: &str, l: Option<&str>| (Some(dir.join(p)), l.map(str::to_string));
        let want = vec![at("a.wav", Some("wütend")), at("b.wav", Some("traurig"))];
        // a header in its own words is read as a row (named by its line when it is no file)
        let german = rows("\u{feff}Datei;Label\r\na.wav;wütend\r\nb.wav;traurig\r\n");
        assert_eq!(german[0], at("Datei", Some("Label")));
        assert_eq!(german[1..], want);
        assert_eq!(rows("path;label\r\na.wav;wütend\r\nb.wav;traurig\r\n"), want);
        assert_eq!(rows("file\temotion\na.wav\twütend\nb.wav\ttraurig\n"), want);
        assert_eq!(rows("a.wav;wütend\nb.wav;traurig\n"), want);
        // a path that holds a semicolon is still one path, and commas still win
        assert_eq!(rows("takes/a;b.wav\n"), vec![at("takes/a;b.wav", None)]);
        assert_eq!(rows("x;1.wav,angry\n"), vec![at("x;1.wav", Some("angry"))]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_manifests_are_one_line_naming_the_file() {
        let err = |name: &str, text: &[u8]| paths_of(name, text).unwrap_err();
        assert!(err("empty", b"").ends_with("room.csv: manifest has no rows"));
        assert!(err("blank", b" , \n\n").ends_with("room.csv: manifest has no rows"));
        assert!(err("header-only", b"path,label\n").ends_with("room.csv: manifest names no audio files"));
        assert!(err("binary", b"a.wav\n\xff\xfe\n").contains("room.csv: not a manifest: not UTF-8 text ("));
        let missing = manifest_paths(Path::new("/nonexistent/serlaq/room.csv")).unwrap_err();
        assert_eq!(missing, "/nonexistent/serlaq/room.csv: manifest not found");
        let dir = folder("dir");
        let refused = manifest_paths(&dir).unwrap_err();
        assert!(refused.starts_with(&format!("{}: is a directory", dir.display())), "{refused}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_clip_named_twice_is_taken_once() {
        let dir = folder("twice");
        std::fs::create_dir_all(dir.join("room")).unwrap();
        std::fs::create_dir_all(dir.join("lists")).unwrap();
        for name in ["a.wav", "b.wav"] {
            std::fs::write(dir.join("room").join(name), b"RIFF").unwrap();
        }
        std::fs::write(dir.join("lists/room.csv"), "../room/b.wav\n../room/c.wav\n../room/b.wav\n").unwrap();
        let manifest = dir.join("lists/room.csv");
        let (files, errors) = find_listed_audio_files(&[dir.join("room").into()], Some(&manifest)).unwrap();
        let spelled: Vec<_> = files.iter().map(|f| f.strip_prefix(&dir).unwrap().to_path_buf()).collect();
        // c.wav does not exist: it stays, to be named when it is read
        assert_eq!(spelled, ["room/a.wav", "room/b.wav", "lists/../room/c.wav"].map(PathBuf::from));
        assert!(errors.is_empty());
        let none = find_listed_audio_files(&[dir.join("gone").into()], None).unwrap();
        assert_eq!((none.0.len(), none.1.len()), (0, 1));
        let bad = find_listed_audio_files(&[], Some(&dir.join("lists/none.csv"))).unwrap_err();
        assert!(bad.ends_with("none.csv: manifest not found"), "{bad}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_huge_file_is_refused_without_reading_it_all() {
        let dir = folder("huge");
        let manifest = dir.join("room.csv");
        let file = std::fs::File::create(&manifest).unwrap();
        file.set_len(MAX_MANIFEST_BYTES + 1).unwrap(); // sparse: no disk used
        let err = manifest_paths(&manifest).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.ends_with("manifest is larger than 64 MiB: not a list of audio paths"), "{err}");
    }
}

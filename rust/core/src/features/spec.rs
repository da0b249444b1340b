//! `FeatureSpec`: the `features` object of a `.laq` header (`FeatureConfig.model_dump(mode="json")`),
//! typed and bounded.
//!
//! Every number that sizes memory is checked against the bounds below before anything
//! is allocated from it (a header asking for a 2 GHz rate or `n_fft = 2^30` is an error,
//! not an allocation). A missing `preset` is `paper` (files from before presets); every
//! other missing key takes the value of the stored preset ([`FeatureSpec::preset`], the
//! `PRESETS` table of `feature_config.py`); unknown keys are an error. Rulings:
//! `docs/features.md`.

use serde_json::{Map, Value};
use std::fmt;

/// Lowest and highest model sample rate (Hz).
pub const SAMPLE_RATE_RANGE: (u64, u64) = (1000, 192_000);
/// FFT size bounds (samples).
pub const N_FFT_RANGE: (u64, u64) = (16, 16_384);
/// Mel band bounds.
pub const N_MELS_RANGE: (u64, u64) = (1, 512);
/// Chroma bin bounds.
pub const N_CHROMA_RANGE: (u64, u64) = (0, 96);
/// Largest `top_db` (dB); it must also be > 0.
pub const MAX_TOP_DB: f64 = 300.0;
/// `chroma_tuning` bounds (fractions of a chroma bin).
pub const CHROMA_TUNING_RANGE: (f64, f64) = (-0.5, 0.5);
/// Largest `frame_gate_db` and `frame_floor_db` (dB); they must also be > 0.
pub const MAX_FRAME_GATE_DB: f64 = 300.0;
/// The quantile of a window's frame levels taken as its noise floor (`frame_floor_db`).
pub const FLOOR_QUANTILE: f64 = 0.1;
/// The gate of the `portable-gated` preset (dB below the loudest frame).
pub const GATED_PRESET_DB: f64 = 30.0;
/// Largest `edge_pause_s` (seconds); it must also be > 0.
pub const MAX_EDGE_PAUSE_S: f64 = 60.0;
/// `edge_pause_s`: a clip's level is measured in blocks this long (seconds, at the model rate).
pub const EDGE_BLOCK_S: f64 = 0.02;
/// `edge_pause_s`: a block is loud when its energy is within this many dB of the loudest block's.
pub const EDGE_BELOW_DB: f64 = 40.0;
/// `10^(-EDGE_BELOW_DB / 10)` as a literal, so no `pow` of any libm (WebAssembly's included) decides it.
pub const EDGE_ENERGY_RATIO: f64 = 1e-4;
/// `edge_floor`: a block is loud only when its energy is also this many dB over the clip's floor.
pub const EDGE_FLOOR_ABOVE_DB: f64 = 10.0;
/// `10^(EDGE_FLOOR_ABOVE_DB / 10)` as a literal (as [`EDGE_ENERGY_RATIO`]).
pub const EDGE_FLOOR_RATIO: f64 = 10.0;
/// `edge_floor`: the clip's floor is its block energy number `(n - 1) / EDGE_FLOOR_DIVISOR`
/// in rising order (numpy's 10th percentile, method "lower": integer arithmetic, no rounding).
pub const EDGE_FLOOR_DIVISOR: usize = 10;
/// The lead-in and tail the `portable-trimmed` preset keeps (seconds).
pub const TRIMMED_PRESET_S: f64 = 0.15;
/// Delta window bounds (odd).
pub const DELTA_WIDTH_RANGE: (u64, u64) = (3, 31);
/// Input audio rate bounds (what a file or waveform may have), Hz.
pub const INPUT_RATE_RANGE: (u64, u64) = (1000, 384_000);
/// Longest whole clip (seconds); longer audio belongs to segment mode.
pub const MAX_CLIP_SECONDS: u64 = 3600;

/// Every preset with its name, in [`Preset`] declaration order (`as_str` indexes it by
/// discriminant; a test holds the order): the one place a preset is spelled.
const PRESETS: [(Preset, &str); 7] = [
    (Preset::Paper, "paper"),
    (Preset::Rich, "rich"),
    (Preset::Portable, "portable"),
    (Preset::PortableNoChroma, "portable-nochroma"),
    (Preset::PortableGated, "portable-gated"),
    (Preset::PortableTrimmed, "portable-trimmed"),
    (Preset::PortableTrimmedFloor, "portable-trimmed-floor"),
];

/// Every preset name, in [`Preset`] order (what a bad `preset` value's error lists).
pub const PRESET_NAMES: [&str; PRESETS.len()] = {
    let mut names = [""; PRESETS.len()];
    let mut i = 0;
    while i < PRESETS.len() {
        names[i] = PRESETS[i].1;
        i += 1;
    }
    names
};

/// Every key of the `features` object, in `FeatureConfig` order.
pub const KEYS: [&str; 22] = [
    "preset",
    "sample_rate",
    "n_mfcc",
    "n_chroma",
    "n_mels",
    "n_fft",
    "hop_length",
    "win_length",
    "f_min",
    "f_max",
    "top_db",
    "chroma_spectrum",
    "chroma_tuning",
    "mel_scale",
    "stats",
    "delta_stats",
    "delta_width",
    "db_reference",
    "frame_gate_db",
    "frame_floor_db",
    "edge_pause_s",
    "edge_floor",
];

/// The spectrum the chroma filterbank sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChromaSpectrum {
    Magnitude,
    Power,
}

/// The mel block: power (paper) or the floored dB values the MFCC sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MelScale {
    Power,
    Db,
}

/// What every floored dB value is taken relative to: 1.0 (absolute), the clip's highest
/// floored dB (peak) or its mean floored dB over bands and frames (mean). Peak and mean
/// make the features invariant to a gain on the waveform; only the mean blocks move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbReference {
    Absolute,
    Peak,
    Mean,
}

impl DbReference {
    pub fn as_str(self) -> &'static str {
        match self {
            DbReference::Absolute => "absolute",
            DbReference::Peak => "peak",
            DbReference::Mean => "mean",
        }
    }
}

/// A pooling statistic over frames (std is the population std, ddof = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Mean,
    Std,
}

impl Stat {
    pub fn as_str(self) -> &'static str {
        match self {
            Stat::Mean => "mean",
            Stat::Std => "std",
        }
    }
}

/// A named bundle of defaults (`FeatureConfig.preset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Paper,
    Rich,
    Portable,
    PortableNoChroma,
    PortableGated,
    PortableTrimmed,
    PortableTrimmedFloor,
}

impl Preset {
    pub fn as_str(self) -> &'static str {
        PRESETS[self as usize].1
    }
}

/// One problem with a `features` object; `Display` names the field and the bound.
#[derive(Debug, Clone, PartialEq)]
pub enum SpecError {
    /// The `features` value is not a JSON object.
    NotObject { got: &'static str },
    /// A key `FeatureConfig` does not have.
    UnknownKey { key: String },
    /// A value of the wrong JSON type.
    WrongType { field: &'static str, expected: &'static str, got: &'static str },
    /// An integer outside its inclusive range.
    IntOutOfRange { field: &'static str, value: String, min: u64, max: u64 },
    /// A number outside its range (`bound` says which, e.g. "(0, 300]").
    NumberOutOfRange { field: &'static str, value: f64, bound: String },
    /// A string that is not one of the allowed choices.
    BadChoice { field: &'static str, value: String, allowed: &'static [&'static str] },
    /// The same statistic twice in `stats` or `delta_stats`.
    DuplicateStat { field: &'static str, stat: &'static str },
    /// `stats` is empty.
    EmptyStats,
    /// `delta_width` is even.
    EvenDeltaWidth { value: u64 },
    /// `edge_floor` is true without `edge_pause_s`.
    EdgeFloorWithoutPause,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::NotObject { got } => write!(f, "features: must be a JSON object, got {got}"),
            SpecError::UnknownKey { key } => {
                write!(f, "features.{key}: unknown key (known: {})", KEYS.join(", "))
            }
            SpecError::WrongType { field, expected, got } => {
                write!(f, "features.{field}: must be {expected}, got {got}")
            }
            SpecError::IntOutOfRange { field, value, min, max } => {
                write!(f, "features.{field}: {value} is outside {min}..={max}")
            }
            SpecError::NumberOutOfRange { field, value, bound } => {
                write!(f, "features.{field}: {value} is outside {bound}")
            }
            SpecError::BadChoice { field, value, allowed } => {
                write!(f, "features.{field}: {value:?} is not one of {}", allowed.join(", "))
            }
            SpecError::DuplicateStat { field, stat } => write!(f, "features.{field}: {stat:?} appears twice"),
            SpecError::EmptyStats => write!(f, "features.stats: must name at least one statistic (mean, std)"),
            SpecError::EvenDeltaWidth { value } => write!(f, "features.delta_width: {value} is even, must be odd"),
            SpecError::EdgeFloorWithoutPause => {
                write!(f, "features.edge_floor: true needs features.edge_pause_s (the floor line refines the edge cut)")
            }
        }
    }
}

impl std::error::Error for SpecError {}

/// The typed, validated feature definition (see `python/serlaq/feature_config.py`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    pub preset: Preset,
    pub sample_rate: u32,
    pub n_mfcc: usize,
    pub n_chroma: usize,
    pub n_mels: usize,
    pub n_fft: usize,
    pub hop_length: usize,
    /// `None` = `n_fft`.
    pub win_length: Option<usize>,
    pub f_min: f64,
    /// `None` = `sample_rate / 2`.
    pub f_max: Option<f64>,
    pub top_db: Option<f64>,
    pub chroma_spectrum: ChromaSpectrum,
    pub chroma_tuning: f64,
    pub mel_scale: MelScale,
    pub stats: Vec<Stat>,
    pub delta_stats: Vec<Stat>,
    pub delta_width: usize,
    pub db_reference: DbReference,
    /// Pool only the frames whose mean floored dB over the bands lies within this many dB
    /// of the pooled window's loudest frame (pauses and room tone leave the statistics);
    /// `None` = every frame.
    pub frame_gate_db: Option<f64>,
    /// Pool only the frames at least this many dB above the window's noise floor (the
    /// [`FLOOR_QUANTILE`] of its frame levels): stationary noise in the pauses leaves the
    /// statistics too. With both gates a frame must pass both; `None` = no floor gate.
    pub frame_floor_db: Option<f64>,
    /// Keep at most this many seconds before a whole clip's first and after its last loud
    /// block ([`super::edges`]); `None` = the whole clip.
    pub edge_pause_s: Option<f64>,
    /// With `edge_pause_s`: a block is loud only when also [`EDGE_FLOOR_ABOVE_DB`] over the
    /// clip's noise floor (room tone in a noisy room is cut too).
    pub edge_floor: bool,
}

impl FeatureSpec {
    /// The values of a preset (`feature_config.PRESETS`): `paper` is the default spec;
    /// `rich` = dB mel, mean + std pooling, std of delta-MFCC, 64 mel bands (272-d);
    /// `portable` = `rich` at 16 kHz (band 0-8 kHz, n_fft 1024, hop 256) with dB relative to the clip's mean;
    /// `portable-nochroma` = `portable` without the chroma blocks (`n_chroma: 0`, 248-d);
    /// `portable-gated` = `portable-nochroma` pooling only frames within [`GATED_PRESET_DB`] dB of the loudest;
    /// `portable-trimmed` = `portable-nochroma` keeping [`TRIMMED_PRESET_S`] of quiet lead-in and tail;
    /// `portable-trimmed-floor` = `portable-trimmed` with `edge_floor` (quiet against the clip's floor too).
    pub fn preset(p: Preset) -> FeatureSpec {
        match p {
            Preset::Paper => FeatureSpec::default(),
            Preset::Rich => FeatureSpec {
                preset: Preset::Rich,
                mel_scale: MelScale::Db,
                stats: vec![Stat::Mean, Stat::Std],
                delta_stats: vec![Stat::Std],
                n_mels: 64,
                ..FeatureSpec::default()
            },
            Preset::Portable => FeatureSpec {
                preset: Preset::Portable,
                sample_rate: 16000,
                n_fft: 1024,
                hop_length: 256,
                db_reference: DbReference::Mean,
                ..FeatureSpec::preset(Preset::Rich)
            },
            Preset::PortableNoChroma => {
                FeatureSpec { preset: Preset::PortableNoChroma, n_chroma: 0, ..FeatureSpec::preset(Preset::Portable) }
            }
            Preset::PortableGated => FeatureSpec {
                preset: Preset::PortableGated,
                frame_gate_db: Some(GATED_PRESET_DB),
                ..FeatureSpec::preset(Preset::PortableNoChroma)
            },
            Preset::PortableTrimmed => FeatureSpec {
                preset: Preset::PortableTrimmed,
                edge_pause_s: Some(TRIMMED_PRESET_S),
                ..FeatureSpec::preset(Preset::PortableNoChroma)
            },
            Preset::PortableTrimmedFloor => FeatureSpec {
                preset: Preset::PortableTrimmedFloor,
                edge_floor: true,
                ..FeatureSpec::preset(Preset::PortableTrimmed)
            },
        }
    }
}

impl Default for FeatureSpec {
    /// The `paper` preset: 40 MFCC + 12 chroma + 128 power mel, time means (180-d).
    fn default() -> Self {
        FeatureSpec {
            preset: Preset::Paper,
            sample_rate: 22050,
            n_mfcc: 40,
            n_chroma: 12,
            n_mels: 128,
            n_fft: 2048,
            hop_length: 512,
            win_length: None,
            f_min: 0.0,
            f_max: None,
            top_db: Some(80.0),
            chroma_spectrum: ChromaSpectrum::Magnitude,
            chroma_tuning: 0.0,
            mel_scale: MelScale::Power,
            stats: vec![Stat::Mean],
            delta_stats: Vec::new(),
            delta_width: 9,
            db_reference: DbReference::Absolute,
            frame_gate_db: None,
            frame_floor_db: None,
            edge_pause_s: None,
            edge_floor: false,
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn int(field: &'static str, v: &Value, (min, max): (u64, u64)) -> Result<u64, SpecError> {
    let Value::Number(n) = v else {
        return Err(SpecError::WrongType { field, expected: "an integer", got: kind(v) });
    };
    match n.as_u64() {
        Some(x) if (min..=max).contains(&x) => Ok(x),
        _ if n.as_f64().is_some_and(|x| x.fract() != 0.0) => {
            Err(SpecError::WrongType { field, expected: "an integer", got: "a fractional number" })
        }
        _ => Err(SpecError::IntOutOfRange { field, value: n.to_string(), min, max }),
    }
}

fn number(field: &'static str, v: &Value) -> Result<f64, SpecError> {
    match v.as_f64() {
        Some(x) if v.is_number() => Ok(x),
        _ => Err(SpecError::WrongType { field, expected: "a number", got: kind(v) }),
    }
}

/// A dB width that is null (off) or a number in `(0, max]`.
fn optional_positive(field: &'static str, v: &Value, max: f64) -> Result<Option<f64>, SpecError> {
    if v.is_null() {
        return Ok(None);
    }
    let x = number(field, v)?;
    if !(x > 0.0 && x <= max) {
        return Err(SpecError::NumberOutOfRange { field, value: x, bound: format!("(0, {max}]") });
    }
    Ok(Some(x))
}

/// The position of `v` in `allowed`: callers index a table in the same order, so no
/// catch-all arm can map a name the list does not hold.
fn choice(field: &'static str, v: &Value, allowed: &'static [&'static str]) -> Result<usize, SpecError> {
    let Value::String(s) = v else {
        return Err(SpecError::WrongType { field, expected: "a string", got: kind(v) });
    };
    allowed.iter().position(|a| a == s).ok_or_else(|| SpecError::BadChoice { field, value: s.clone(), allowed })
}

fn stats(field: &'static str, v: &Value) -> Result<Vec<Stat>, SpecError> {
    let Value::Array(items) = v else {
        return Err(SpecError::WrongType { field, expected: "a list of statistics", got: kind(v) });
    };
    let mut out = Vec::new();
    for item in items {
        let s = [Stat::Mean, Stat::Std][choice(field, item, &["mean", "std"])?];
        if out.contains(&s) {
            return Err(SpecError::DuplicateStat { field, stat: s.as_str() });
        }
        out.push(s);
    }
    Ok(out)
}

impl FeatureSpec {
    /// Parses and validates a `features` JSON object.
    pub fn from_json_value(v: &Value) -> Result<FeatureSpec, SpecError> {
        let Value::Object(map) = v else {
            return Err(SpecError::NotObject { got: kind(v) });
        };
        FeatureSpec::from_map(map)
    }

    /// Parses and validates a `features` JSON text.
    pub fn from_json(text: &str) -> Result<FeatureSpec, SpecError> {
        let v: Value = serde_json::from_str(text).map_err(|_| SpecError::WrongType {
            field: "(root)",
            expected: "a JSON object",
            got: "malformed JSON",
        })?;
        FeatureSpec::from_json_value(&v)
    }

    fn from_map(map: &Map<String, Value>) -> Result<FeatureSpec, SpecError> {
        if let Some(k) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(SpecError::UnknownKey { key: k.clone() });
        }
        let get = |k: &str| map.get(k);
        let preset = match get("preset") {
            None => Preset::Paper,
            Some(v) => PRESETS[choice("preset", v, &PRESET_NAMES)?].0,
        };
        let mut s = FeatureSpec::preset(preset);
        if let Some(v) = get("sample_rate") {
            s.sample_rate = int("sample_rate", v, SAMPLE_RATE_RANGE)? as u32;
        }
        if let Some(v) = get("n_fft") {
            s.n_fft = int("n_fft", v, N_FFT_RANGE)? as usize;
        }
        let n_fft = s.n_fft as u64;
        if let Some(v) = get("hop_length") {
            s.hop_length = int("hop_length", v, (1, n_fft))? as usize;
        } else if s.hop_length > s.n_fft {
            return Err(SpecError::IntOutOfRange {
                field: "hop_length",
                value: s.hop_length.to_string(),
                min: 1,
                max: n_fft,
            });
        }
        match get("win_length") {
            None | Some(Value::Null) => s.win_length = None,
            Some(v) => s.win_length = Some(int("win_length", v, (1, n_fft))? as usize),
        }
        if let Some(v) = get("n_mels") {
            s.n_mels = int("n_mels", v, N_MELS_RANGE)? as usize;
        }
        let n_mels = s.n_mels as u64;
        if let Some(v) = get("n_mfcc") {
            s.n_mfcc = int("n_mfcc", v, (1, n_mels))? as usize;
        } else if s.n_mfcc > s.n_mels {
            return Err(SpecError::IntOutOfRange { field: "n_mfcc", value: s.n_mfcc.to_string(), min: 1, max: n_mels });
        }
        if let Some(v) = get("n_chroma") {
            s.n_chroma = int("n_chroma", v, N_CHROMA_RANGE)? as usize;
        }
        let nyquist = f64::from(s.sample_rate) / 2.0;
        if let Some(v) = get("f_max") {
            s.f_max = match v {
                Value::Null => None,
                v => Some(number("f_max", v)?),
            };
        }
        if let Some(v) = get("f_min") {
            s.f_min = number("f_min", v)?;
        }
        let f_max = s.f_max.unwrap_or(nyquist);
        if let Some(x) = s.f_max {
            if !(x > 0.0 && x <= nyquist) {
                return Err(SpecError::NumberOutOfRange {
                    field: "f_max",
                    value: x,
                    bound: format!("(f_min, sample_rate / 2 = {nyquist}]"),
                });
            }
        }
        if !(s.f_min >= 0.0 && s.f_min < f_max) {
            return Err(SpecError::NumberOutOfRange { field: "f_min", value: s.f_min, bound: format!("[0, {f_max})") });
        }
        if let Some(v) = get("top_db") {
            s.top_db = optional_positive("top_db", v, MAX_TOP_DB)?;
        }
        if let Some(v) = get("chroma_spectrum") {
            s.chroma_spectrum = [ChromaSpectrum::Magnitude, ChromaSpectrum::Power]
                [choice("chroma_spectrum", v, &["magnitude", "power"])?];
        }
        if let Some(v) = get("chroma_tuning") {
            let x = number("chroma_tuning", v)?;
            let (lo, hi) = CHROMA_TUNING_RANGE;
            if !(lo..=hi).contains(&x) {
                return Err(SpecError::NumberOutOfRange {
                    field: "chroma_tuning",
                    value: x,
                    bound: format!("[{lo}, {hi}]"),
                });
            }
            s.chroma_tuning = x;
        }
        if let Some(v) = get("mel_scale") {
            s.mel_scale = [MelScale::Power, MelScale::Db][choice("mel_scale", v, &["power", "db"])?];
        }
        if let Some(v) = get("stats") {
            s.stats = stats("stats", v)?;
            if s.stats.is_empty() {
                return Err(SpecError::EmptyStats);
            }
        }
        if let Some(v) = get("delta_stats") {
            s.delta_stats = stats("delta_stats", v)?;
        }
        if let Some(v) = get("delta_width") {
            let w = int("delta_width", v, DELTA_WIDTH_RANGE)?;
            if w % 2 == 0 {
                return Err(SpecError::EvenDeltaWidth { value: w });
            }
            s.delta_width = w as usize;
        }
        if let Some(v) = get("db_reference") {
            s.db_reference = [DbReference::Absolute, DbReference::Peak, DbReference::Mean]
                [choice("db_reference", v, &["absolute", "peak", "mean"])?];
        }
        if let Some(v) = get("frame_gate_db") {
            s.frame_gate_db = optional_positive("frame_gate_db", v, MAX_FRAME_GATE_DB)?;
        }
        if let Some(v) = get("frame_floor_db") {
            s.frame_floor_db = optional_positive("frame_floor_db", v, MAX_FRAME_GATE_DB)?;
        }
        if let Some(v) = get("edge_pause_s") {
            s.edge_pause_s = optional_positive("edge_pause_s", v, MAX_EDGE_PAUSE_S)?;
        }
        if let Some(v) = get("edge_floor") {
            let Value::Bool(b) = v else {
                return Err(SpecError::WrongType { field: "edge_floor", expected: "true or false", got: kind(v) });
            };
            s.edge_floor = *b;
        }
        if s.edge_floor && s.edge_pause_s.is_none() {
            return Err(SpecError::EdgeFloorWithoutPause);
        }
        Ok(s)
    }

    /// The spec as the `features` JSON object (every key, `FeatureConfig` order).
    pub fn to_json_value(&self) -> Value {
        let stat_list = |v: &[Stat]| Value::Array(v.iter().map(|s| Value::from(s.as_str())).collect());
        let mut m = Map::new();
        m.insert("preset".into(), self.preset.as_str().into());
        m.insert("sample_rate".into(), self.sample_rate.into());
        m.insert("n_mfcc".into(), self.n_mfcc.into());
        m.insert("n_chroma".into(), self.n_chroma.into());
        m.insert("n_mels".into(), self.n_mels.into());
        m.insert("n_fft".into(), self.n_fft.into());
        m.insert("hop_length".into(), self.hop_length.into());
        m.insert("win_length".into(), self.win_length.map_or(Value::Null, Value::from));
        m.insert("f_min".into(), self.f_min.into());
        m.insert("f_max".into(), self.f_max.map_or(Value::Null, Value::from));
        m.insert("top_db".into(), self.top_db.map_or(Value::Null, Value::from));
        let cs = match self.chroma_spectrum {
            ChromaSpectrum::Magnitude => "magnitude",
            ChromaSpectrum::Power => "power",
        };
        m.insert("chroma_spectrum".into(), cs.into());
        m.insert("chroma_tuning".into(), self.chroma_tuning.into());
        let ms = match self.mel_scale {
            MelScale::Power => "power",
            MelScale::Db => "db",
        };
        m.insert("mel_scale".into(), ms.into());
        m.insert("stats".into(), stat_list(&self.stats));
        m.insert("delta_stats".into(), stat_list(&self.delta_stats));
        m.insert("delta_width".into(), self.delta_width.into());
        m.insert("db_reference".into(), self.db_reference.as_str().into());
        m.insert("frame_gate_db".into(), self.frame_gate_db.map_or(Value::Null, Value::from));
        m.insert("frame_floor_db".into(), self.frame_floor_db.map_or(Value::Null, Value::from));
        m.insert("edge_pause_s".into(), self.edge_pause_s.map_or(Value::Null, Value::from));
        m.insert("edge_floor".into(), self.edge_floor.into());
        Value::Object(m)
    }

    /// Analysis window length (`win_length`, or `n_fft`).
    pub fn win_length(&self) -> usize {
        self.win_length.unwrap_or(self.n_fft)
    }

    /// Highest mel frequency (`f_max`, or `sample_rate / 2`).
    pub fn f_max(&self) -> f64 {
        self.f_max.unwrap_or(f64::from(self.sample_rate) / 2.0)
    }

    /// FFT bins: `n_fft / 2 + 1`.
    pub fn n_freqs(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Shortest clip accepted: one full analysis window.
    pub fn min_samples(&self) -> usize {
        self.win_length()
    }

    /// Longest whole clip in samples ([`MAX_CLIP_SECONDS`] at the model rate).
    pub fn max_samples(&self) -> usize {
        MAX_CLIP_SECONDS as usize * self.sample_rate as usize
    }

    /// Whether some frames may be left out of the pooled statistics (either gate set).
    pub fn gates_frames(&self) -> bool {
        self.frame_gate_db.is_some() || self.frame_floor_db.is_some()
    }

    /// Whether per-frame MFCCs are needed (std of MFCC or any delta statistic).
    pub fn needs_frame_mfcc(&self) -> bool {
        self.stats.contains(&Stat::Std) || !self.delta_stats.is_empty()
    }

    /// Length of the feature vector:
    /// `len(stats) * (n_mfcc + n_chroma + n_mels) + len(delta_stats) * n_mfcc`.
    pub fn dim(&self) -> usize {
        self.stats.len() * (self.n_mfcc + self.n_chroma + self.n_mels) + self.delta_stats.len() * self.n_mfcc
    }

    /// `(name, start, end)` of every block, in vector order: for s in stats `mfcc_s`,
    /// `chroma_s`, `mel_s`; then for s in delta_stats `dmfcc_s`.
    pub fn blocks(&self) -> Vec<(String, usize, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        for s in &self.stats {
            for (name, n) in [("mfcc", self.n_mfcc), ("chroma", self.n_chroma), ("mel", self.n_mels)] {
                out.push((format!("{name}_{}", s.as_str()), at, at + n));
                at += n;
            }
        }
        for s in &self.delta_stats {
            out.push((format!("dmfcc_{}", s.as_str()), at, at + self.n_mfcc));
            at += self.n_mfcc;
        }
        out
    }
}

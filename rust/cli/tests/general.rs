//! The name `general` in `serlaq-rt`: the shipped model when the build embeds one, else
//! one line saying the build has none; `./general` is still a path.

use serlaq_core::general::{general_model_bytes, NOT_SHIPPED};
use serlaq_core::runtime::ModelSource;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_serlaq-rt");

#[test]
fn general_names_the_shipped_model() {
    assert!(matches!(ModelSource::from_arg("general"), ModelSource::General));
    assert!(matches!(ModelSource::from_arg("./general"), ModelSource::Path(_)));
    assert!(matches!(ModelSource::from_arg("general.laq"), ModelSource::Path(_)));
    let out = Command::new(BIN).args(["info", "general", "--json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match general_model_bytes() {
        Some(bytes) => {
            assert!(out.status.success(), "{stderr}");
            let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(info["path"], "general");
            assert_eq!(info["size_bytes"].as_u64(), Some(bytes.len() as u64));
            // the shipped model's confidence fades far from its training data, down to its
            // floor (docs/adapt.md)
            let c = &info["confidence"];
            assert_eq!(c["ood_score"], "hidden", "{c}");
            assert!(
                c["reference_rank"].as_u64().is_some_and(|r| r >= 1)
                    && c["temper"].as_f64().is_some_and(|k| k > 0.0)
                    && c["floor"].as_f64().is_some_and(|m| m > 0.0),
                "{c}"
            );
            let text = Command::new(BIN).args(["info", "general"]).output().unwrap();
            let text = String::from_utf8_lossy(&text.stdout);
            assert!(text.contains("x chance for the top label"), "{text}");
        }
        None => {
            assert_eq!(out.status.code(), Some(1));
            assert_eq!(stderr, format!("serlaq-rt: error: {NOT_SHIPPED}\n"));
        }
    }
}

#[test]
fn a_file_called_general_is_reached_by_its_path() {
    let dir = std::env::temp_dir().join(format!("serlaq-rt-general-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("general"), b"not a model").unwrap();
    let out = Command::new(BIN).current_dir(&dir).args(["info", "./general"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("general: not a .laq file") && !stderr.contains("ships no general model"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

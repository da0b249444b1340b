//! The models served, by name; the first is the default.

use crate::config::{check_name, ModelSource};
use crate::info::Summary;
use serlaq_core::format::{LaqError, LaqFile};
use serlaq_core::model::Model;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

pub struct Entry {
    pub name: String,
    pub model: Arc<Model>,
    /// `serlaq-rt info --json` of the model, computed once.
    info: String,
}

pub struct Registry {
    entries: Vec<Entry>,
    listing: String,
}

fn load(source: &ModelSource) -> Result<(Model, String), String> {
    let r = catch_unwind(AssertUnwindSafe(|| match source {
        ModelSource::Path(p) => {
            let origin = p.display().to_string();
            let file = LaqFile::open(p).map_err(|e| match e {
                LaqError::Io { path, source } => format!("{}: {source}", path.display()),
                other => format!("{origin}: {other}"),
            })?;
            Model::from_laq(file).map(|m| (m, origin.clone())).map_err(|e| format!("{origin}: {e}"))
        }
        ModelSource::Bytes(b) => {
            let file = LaqFile::from_bytes(b.to_vec()).map_err(|e| format!("<bytes>: {e}"))?;
            Model::from_laq(file).map(|m| (m, "<bytes>".into())).map_err(|e| format!("<bytes>: {e}"))
        }
    }));
    r.unwrap_or_else(|_| Err("internal error while loading a model (please report)".into()))
}

impl Registry {
    pub fn load(models: &[(String, ModelSource)]) -> Result<Registry, String> {
        if models.is_empty() {
            return Err("no model to serve: give --model NAME=PATH".into());
        }
        let mut entries: Vec<Entry> = Vec::new();
        for (name, source) in models {
            check_name(name)?;
            if entries.iter().any(|e| &e.name == name) {
                return Err(format!("model name {name:?} given twice"));
            }
            let (model, origin) = load(source).map_err(|e| format!("model {name}: {e}"))?;
            let info = Summary::new(&model, &origin).to_json().dumps();
            entries.push(Entry { name: name.clone(), model: Arc::new(model), info });
        }
        let items: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                format!("{{\"name\": {}, \"default\": {}, \"info\": {}}}", serde_json::json!(e.name), i == 0, e.info)
            })
            .collect();
        let listing = format!("{{\"models\": [{}]}}", items.join(", "));
        Ok(Registry { entries, listing })
    }

    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name.clone()).collect()
    }

    /// The model named `name`, or the default for `None`.
    pub fn get(&self, name: Option<&str>) -> Result<&Entry, String> {
        match name {
            None | Some("") => Ok(&self.entries[0]),
            Some(n) => self.entries.iter().find(|e| e.name == n).ok_or_else(|| {
                format!("no model named {n:?}; this server has: {}", self.names().join(", "))
            }),
        }
    }

    /// `GET /v1/models`: `{"models": [{"name", "default", "info": <serlaq-rt info --json>}]}`.
    pub fn listing_json(&self) -> String {
        self.listing.clone()
    }
}

//! The models served, by name; the first is the default.

use crate::config::check_name;
use serlaq_core::runtime::json::to_line;
use serlaq_core::runtime::{Model, ModelInfo, ModelSource};
use std::sync::Arc;

pub struct Entry {
    pub name: String,
    pub model: Arc<Model>,
    /// `serlaq-rt info --json` of the model (the facade's `ModelInfo`), one line.
    info: String,
}

pub struct Registry {
    entries: Vec<Entry>,
    listing: String,
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
            let origin = source.name();
            let model = source.clone().load().map_err(|e| format!("model {name}: {e}"))?;
            let info = to_line(&ModelInfo::new(&model, &origin));
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
            Some(n) => self
                .entries
                .iter()
                .find(|e| e.name == n)
                .ok_or_else(|| format!("no model named {n:?}; this server has: {}", self.names().join(", "))),
        }
    }

    /// `GET /v1/models`: `{"models": [{"name", "default", "info": <serlaq-rt info --json>}]}`.
    pub fn listing_json(&self) -> String {
        self.listing.clone()
    }
}

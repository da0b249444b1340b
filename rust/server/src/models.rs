//! The models served, by name; the first is the default. Those the server was started with
//! stay as they are; `POST /v1/adapt?serve=NAME` adds adapted ones under names of their own
//! (at most `max_adapted`; a name given again replaces its model), held in memory until the
//! server stops.

use crate::config::check_name;
use serlaq_core::runtime::json::to_line;
use serlaq_core::runtime::{Model, ModelInfo, ModelSource};
use std::sync::{Arc, RwLock, RwLockReadGuard};

pub struct Entry {
    pub name: String,
    pub model: Arc<Model>,
    /// Added by `/v1/adapt?serve=`, not given at the start.
    pub adapted: bool,
    /// `serlaq-rt info --json` of the model (the facade's `ModelInfo`), one line.
    info: String,
}

impl Entry {
    fn new(name: &str, model: Model, origin: &str, adapted: bool) -> Entry {
        let info = to_line(&ModelInfo::new(&model, origin));
        Entry { name: name.to_string(), model: Arc::new(model), adapted, info }
    }
}

/// Why an adapted model cannot be served under a name.
#[derive(Debug, PartialEq)]
pub enum ServeError {
    /// Not a model name, one the server was started with, or adapted models are off.
    Name(String),
    /// Every adapted slot holds a model of another name.
    Full(String),
}

pub struct Registry {
    entries: RwLock<Vec<Arc<Entry>>>,
    max_adapted: usize,
}

impl Registry {
    pub fn load(models: &[(String, ModelSource)], max_adapted: usize) -> Result<Registry, String> {
        if models.is_empty() {
            return Err("no model to serve: give --model NAME=PATH".into());
        }
        let mut entries: Vec<Arc<Entry>> = Vec::new();
        for (name, source) in models {
            check_name(name)?;
            if entries.iter().any(|e| &e.name == name) {
                return Err(format!("model name {name:?} given twice"));
            }
            let origin = source.name();
            let model = source.clone().load().map_err(|e| format!("model {name}: {e}"))?;
            entries.push(Arc::new(Entry::new(name, model, &origin, false)));
        }
        Ok(Registry { entries: RwLock::new(entries), max_adapted })
    }

    /// The list, read; a writer that panicked left it whole (each change is one push or
    /// one swap), so a poisoned lock is read as it is.
    fn read(&self) -> RwLockReadGuard<'_, Vec<Arc<Entry>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn names(&self) -> Vec<String> {
        self.read().iter().map(|e| e.name.clone()).collect()
    }

    /// The model named `name`, or the default for `None`.
    pub fn get(&self, name: Option<&str>) -> Result<Arc<Entry>, String> {
        let entries = self.read();
        match name {
            None | Some("") => Ok(entries[0].clone()),
            Some(n) => entries.iter().find(|e| e.name == n).cloned().ok_or_else(|| {
                let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
                format!("no model named {n:?}; this server has: {}", names.join(", "))
            }),
        }
    }

    /// Whether an adapted model may be served as `name` now: a model name, not one the
    /// server was started with, and a free slot or an adapted model of that name to replace.
    pub fn check_serve(&self, name: &str) -> Result<(), ServeError> {
        check_serve(&self.read(), name, self.max_adapted)
    }

    /// Serves `model` as `name` (checked again: another request may have taken the last
    /// slot meanwhile), replacing an adapted model of that name.
    pub fn serve_adapted(&self, name: &str, model: Model, origin: &str) -> Result<(), ServeError> {
        let entry = Arc::new(Entry::new(name, model, origin, true));
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        check_serve(&entries, name, self.max_adapted)?;
        match entries.iter_mut().find(|e| e.name == name) {
            Some(old) => *old = entry,
            None => entries.push(entry),
        }
        Ok(())
    }

    /// `GET /v1/models`: `{"models": [{"name", "default", "adapted", "info": <serlaq-rt info
    /// --json>}], "max_adapted": N}`.
    pub fn listing_json(&self) -> String {
        let items: Vec<String> = self
            .read()
            .iter()
            .enumerate()
            .map(|(i, e)| {
                format!(
                    "{{\"name\": {}, \"default\": {}, \"adapted\": {}, \"info\": {}}}",
                    serde_json::json!(e.name),
                    i == 0,
                    e.adapted,
                    e.info
                )
            })
            .collect();
        format!("{{\"models\": [{}], \"max_adapted\": {}}}", items.join(", "), self.max_adapted)
    }
}

fn check_serve(entries: &[Arc<Entry>], name: &str, max_adapted: usize) -> Result<(), ServeError> {
    if max_adapted == 0 {
        return Err(ServeError::Name("serve: this server keeps no adapted models (--max-adapted 0)".into()));
    }
    check_name(name).map_err(|e| ServeError::Name(format!("serve: {e}")))?;
    match entries.iter().find(|e| e.name == name) {
        Some(e) if !e.adapted => Err(ServeError::Name(format!(
            "serve: {name:?} is a model this server was started with; choose another name"
        ))),
        Some(_) => Ok(()),
        None if entries.iter().filter(|e| e.adapted).count() >= max_adapted => Err(ServeError::Full(format!(
            "this server already serves {max_adapted} adapted models (--max-adapted); serve under one of their names to replace it: {}",
            entries.iter().filter(|e| e.adapted).map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
        ))),
        None => Ok(()),
    }
}

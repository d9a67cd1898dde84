//! LobeChat plugins (`@lobehub/chat-plugin-sdk` manifests) as sources of tools: each entry of
//! the manifest's `api` list is a tool with its JSON-schema parameters. A call posts the
//! arguments as JSON to the entry's `url` — or, for a plugin with its own `gateway`, LobeChat's
//! gateway payload to that address — with the plugin's settings in `X-Lobe-Plugin-Settings`,
//! from the server, through the SSRF guard for a member's plugin. A manifest that names an
//! `openapi` document gets the document's operations as tools instead (read when the plugin is
//! installed and kept in the stored manifest, `x-loquat-openapi`). Settings come from the
//! person's form over the administrator's `PLUGIN_SETTINGS`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use loquat_core::llm::ToolSpec;
use loquat_core::tools::{SourceStatus, Tool, ToolFailure, ToolOutput, ToolSource};
use loquat_providers::web::{Origin, WebClient};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::openapi::{self, Operation};

/// The largest manifest read.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;
/// The largest answer of a plugin read (the toolbox cuts what the model sees further).
const MAX_ANSWER_BYTES: usize = 2 << 20;
/// The most APIs of one plugin offered to a model.
const MAX_APIS: usize = 64;

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub identifier: String,
    #[serde(default)]
    pub api: Vec<Api>,
    /// The address of an OpenAPI document describing the plugin's API.
    #[serde(default)]
    pub openapi: Option<String>,
    /// That document, as read at installation.
    #[serde(rename = "x-loquat-openapi", default)]
    pub openapi_document: Option<Value>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub meta: Option<Meta>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(rename = "systemRole", default)]
    pub system_role: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Api {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub url: Option<String>,
}

/// Reads and checks a manifest: an identifier of `[\w-]`, and APIs with names and addresses
/// (or a gateway).
pub fn parse_manifest(json: &str) -> Result<Manifest, String> {
    let manifest: Manifest =
        serde_json::from_str(json).map_err(|error| format!("this is not a LobeChat plugin manifest: {error}"))?;
    let word = |text: &str| !text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if !word(&manifest.identifier) || manifest.identifier.len() > 64 {
        return Err("the manifest's identifier must be letters, digits, - and _".to_owned());
    }
    if manifest.api.is_empty() && manifest.openapi.is_none() {
        return Err("the manifest lists no APIs".to_owned());
    }
    for api in &manifest.api {
        if !word(&api.name) {
            return Err(format!("the API name \"{}\" is not letters, digits, - and _", api.name));
        }
        if api.url.is_none() && manifest.gateway.is_none() {
            return Err(format!("the API \"{}\" has no url", api.name));
        }
    }
    Ok(manifest)
}

/// `manifest` (JSON) with the OpenAPI `document` read from `address` kept in it, once the
/// document is found usable.
pub fn with_openapi(manifest: &str, address: &str, document: String) -> Result<String, String> {
    let document: Value = serde_json::from_str(&document).map_err(|_| "the OpenAPI document is not JSON".to_owned())?;
    openapi::operations(&document, Some(address))?;
    let mut manifest: Value = serde_json::from_str(manifest).map_err(|error| error.to_string())?;
    manifest["x-loquat-openapi"] = document;
    Ok(manifest.to_string())
}

/// LobeChat's `PLUGIN_SETTINGS`: `id:k=v;k2=v2,id2:k=v` (`,` or `，` between plugins; a value
/// is cut at a second `=`; later keys win).
pub fn parse_plugin_settings(text: &str) -> Result<HashMap<String, BTreeMap<String, String>>, String> {
    let mut all: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    for segment in text.replace('，', ",").split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, pairs) = segment.split_once(':').ok_or_else(|| format!("\"{segment}\" has no \"id:\""))?;
        let settings = all.entry(id.trim().to_owned()).or_default();
        for pair in pairs.split(';') {
            let mut parts = pair.split('=');
            let (key, value) = (parts.next().unwrap_or_default().trim(), parts.next().unwrap_or_default().trim());
            if !key.is_empty() && !value.is_empty() {
                settings.insert(key.to_owned(), value.to_owned());
            }
        }
    }
    Ok(all)
}

/// One installed plugin.
pub struct Plugin {
    name: String,
    description: String,
    manifest: Manifest,
    /// The raw manifest, for a gateway's payload.
    manifest_json: Value,
    /// The operations of its OpenAPI document, when it has one.
    operations: Vec<Operation>,
    prefix: String,
    /// Its settings as JSON (the header) and as a map (credentials of OpenAPI calls).
    settings: String,
    settings_map: Map<String, Value>,
    web: WebClient,
    origin: Origin,
    me: std::sync::Weak<Plugin>,
}

impl Plugin {
    /// A plugin of `manifest` (JSON); `settings` are the person's over the administrator's
    /// defaults for its identifier (`defaults`).
    pub fn new(
        (name, prefix, description): (String, String, String),
        manifest: &str,
        settings: BTreeMap<String, String>,
        defaults: &HashMap<String, BTreeMap<String, String>>,
        web: &WebClient,
        origin: Origin,
    ) -> Result<Arc<Self>, String> {
        let manifest_json: Value = serde_json::from_str(manifest).map_err(|error| error.to_string())?;
        let manifest = parse_manifest(manifest)?;
        let operations = match &manifest.openapi_document {
            Some(document) => openapi::operations(document, manifest.openapi.as_deref())?,
            None => Vec::new(),
        };
        let mut merged = defaults.get(&manifest.identifier).cloned().unwrap_or_default();
        merged.extend(settings);
        let settings_map: Map<String, Value> =
            merged.into_iter().map(|(key, value)| (key, Value::String(value))).collect();
        let settings = Value::Object(settings_map.clone()).to_string();
        Ok(Arc::new_cyclic(|me| Plugin {
            name,
            description,
            manifest,
            manifest_json,
            operations,
            prefix,
            settings,
            settings_map,
            web: web.clone(),
            origin,
            me: me.clone(),
        }))
    }

    async fn call(&self, api: &Api, arguments: Value) -> Result<String, ToolFailure> {
        let headers = [("X-Lobe-Plugin-Settings", self.settings.as_str())];
        let (url, body) = match &self.manifest.gateway {
            Some(gateway) => {
                let payload = json!({
                    "apiName": api.name,
                    "arguments": arguments.to_string(),
                    "identifier": self.manifest.identifier,
                    "manifest": self.manifest_json,
                    "type": self.manifest.kind.as_deref().unwrap_or("default"),
                });
                (gateway.as_str(), payload)
            }
            None => (api.url.as_deref().unwrap_or_default(), arguments),
        };
        if self.origin == Origin::Untrusted {
            self.web.check_url(url).await.map_err(|error| ToolFailure(error.0))?;
        }
        answer(self.web.post_json(self.origin, url, &headers, &body, MAX_ANSWER_BYTES).await?)
    }

    async fn call_operation(&self, operation: &Operation, arguments: Value) -> Result<String, ToolFailure> {
        let document = self.manifest.openapi_document.as_ref().unwrap_or(&Value::Null);
        let request = operation.request(document, &arguments, &self.settings_map);
        if self.origin == Origin::Untrusted {
            self.web.check_url(&request.url).await.map_err(|error| ToolFailure(error.0))?;
        }
        let (method, url, headers, body) = (request.method, request.url, request.headers, request.body);
        answer(self.web.send(self.origin, method, &url, &headers, body.as_ref(), MAX_ANSWER_BYTES).await?)
    }
}

/// A plugin's answer: its text, or why it failed.
fn answer(response: loquat_providers::web::WebResponse) -> Result<String, ToolFailure> {
    let text = String::from_utf8_lossy(&response.body).into_owned();
    if (200..300).contains(&response.status) {
        Ok(text)
    } else {
        let text: String = text.chars().take(500).collect();
        Err(ToolFailure(format!("the plugin answered {}: {text}", response.status)))
    }
}

#[async_trait]
impl ToolSource for Plugin {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, ToolFailure> {
        let Some(me) = self.me.upgrade() else { return Err(ToolFailure("the plugin was removed".into())) };
        let system_role = self.manifest.system_role.as_deref().unwrap_or_default();
        let entries: Vec<(Entry, &str, &str, Option<&Value>)> = if self.operations.is_empty() {
            let apis = self.manifest.api.iter().enumerate();
            apis.map(|(index, api)| {
                (Entry::Api(index), api.name.as_str(), api.description.as_str(), api.parameters.as_ref())
            })
            .collect()
        } else {
            let operations = self.operations.iter().enumerate();
            operations
                .map(|(index, op)| {
                    (Entry::Operation(index), op.name.as_str(), op.description.as_str(), Some(&op.parameters))
                })
                .collect()
        };
        Ok(entries
            .into_iter()
            .take(MAX_APIS)
            .enumerate()
            .map(|(index, (entry, name, description, parameters))| {
                let mut description: String = description.chars().take(1_000).collect();
                // The plugin's own instructions go with its first tool (LobeChat puts them in
                // the system prompt).
                if index == 0 && !system_role.is_empty() {
                    description.push_str("\n\n");
                    description.extend(system_role.chars().take(2_000));
                }
                let parameters = match parameters {
                    Some(Value::Object(schema)) => Value::Object(schema.clone()),
                    _ => Value::Object(Map::from_iter([("type".to_owned(), json!("object"))])),
                };
                let spec = ToolSpec { name: crate::mcp::tool_name(&self.prefix, name), description, parameters };
                Arc::new(PluginApi { spec, entry, plugin: me.clone() }) as Arc<dyn Tool>
            })
            .collect())
    }

    async fn status(&self) -> SourceStatus {
        let names: Vec<&str> = if self.operations.is_empty() {
            self.manifest.api.iter().map(|api| api.name.as_str()).collect()
        } else {
            self.operations.iter().map(|operation| operation.name.as_str()).collect()
        };
        let tools = names.into_iter().map(|name| crate::mcp::tool_name(&self.prefix, name)).collect();
        SourceStatus { running: true, tools: Some(tools), last_error: None }
    }
}

/// Which of a plugin's calls a tool is.
#[derive(Clone, Copy)]
enum Entry {
    /// An entry of the manifest's `api` list.
    Api(usize),
    /// An operation of its OpenAPI document.
    Operation(usize),
}

struct PluginApi {
    spec: ToolSpec,
    entry: Entry,
    plugin: Arc<Plugin>,
}

#[async_trait]
impl Tool for PluginApi {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value) -> Result<ToolOutput, ToolFailure> {
        let plugin = &self.plugin;
        let text = match self.entry {
            Entry::Api(index) => plugin.call(&plugin.manifest.api[index], arguments).await?,
            Entry::Operation(index) => plugin.call_operation(&plugin.operations[index], arguments).await?,
        };
        Ok(text.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_checked() {
        let good = r#"{"identifier":"weather","meta":{"title":"Weather"},"api":[{"name":"now","description":"Now",
            "url":"https://w.example.com/now","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}"#;
        let manifest = parse_manifest(good).expect("parses");
        assert_eq!((manifest.identifier.as_str(), manifest.api[0].name.as_str()), ("weather", "now"));
        for (bad, why) in [
            ("[]", "not a LobeChat plugin manifest"),
            (r#"{"identifier":"a b","api":[]}"#, "identifier"),
            (r#"{"identifier":"a","api":[]}"#, "no APIs"),
            (r#"{"identifier":"a","api":[{"name":"x"}]}"#, "no url"),
        ] {
            assert!(parse_manifest(bad).expect_err(bad).contains(why), "{bad}");
        }
        let gateway = r#"{"identifier":"a","gateway":"https://g.example.com","api":[{"name":"x"}]}"#;
        assert!(parse_manifest(gateway).is_ok());
    }

    #[test]
    fn plugin_settings_read_like_lobechat() {
        let all = parse_plugin_settings("search:KEY=a;ENGINE=b=c，weather:KEY=w, search:KEY=z;EMPTY=").expect("parses");
        assert_eq!(all["search"]["KEY"], "z");
        assert_eq!(all["search"]["ENGINE"], "b");
        assert!(!all["search"].contains_key("EMPTY"));
        assert_eq!(all["weather"]["KEY"], "w");
        assert!(parse_plugin_settings("no-colon").is_err());
    }
}

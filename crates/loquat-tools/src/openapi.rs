//! A plugin described by an OpenAPI 3 document (JSON): each operation is a tool whose
//! arguments are its path, query and header parameters and its JSON body's properties; a call
//! builds the request from them, with the plugin's settings as credentials for the document's
//! security schemes (an API key in a header or the query, HTTP bearer or basic), as LobeChat's
//! gateway does. `$ref`s inside the document are followed to a fixed depth.

use serde_json::{Map, Value, json};

/// How deep `$ref`s are followed (a cycle ends there).
const MAX_REF_DEPTH: usize = 8;
/// The most values of one tool's schema once its references are followed.
const MAX_SCHEMA_NODES: usize = 2_000;
/// The most operations of one document offered to a model.
const MAX_OPERATIONS: usize = 64;

/// Where an argument goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Path,
    Query,
    Header,
    /// A property of the JSON body.
    Body,
    /// The whole body (a body that is not an object of properties).
    WholeBody,
}

/// One operation of the document.
#[derive(Debug, Clone)]
pub struct Operation {
    pub name: String,
    pub description: String,
    /// The JSON Schema of its arguments.
    pub parameters: Value,
    method: reqwest::Method,
    /// The address with `{name}` placeholders.
    url: String,
    places: Vec<(String, Place)>,
}

/// A request ready to send.
#[derive(Debug)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

/// The operations of `document`, whose relative server addresses are read against `base`.
pub fn operations(document: &Value, base: Option<&str>) -> Result<Vec<Operation>, String> {
    if !document.get("openapi").and_then(Value::as_str).is_some_and(|version| version.starts_with('3')) {
        return Err("only OpenAPI 3 documents (JSON) are read".to_owned());
    }
    let server = document.pointer("/servers/0/url").and_then(Value::as_str).unwrap_or("/");
    let server = match (reqwest::Url::parse(server), base.and_then(|base| reqwest::Url::parse(base).ok())) {
        (Ok(absolute), _) => absolute.to_string(),
        (Err(_), Some(base)) => base.join(server).map_err(|_| "the server address is not one".to_owned())?.to_string(),
        (Err(_), None) => return Err("the document names no absolute server address".to_owned()),
    };
    let server = server.trim_end_matches('/').to_owned();
    let paths = document.get("paths").and_then(Value::as_object).ok_or("the document has no paths")?;
    let mut found = Vec::new();
    for (path, item) in paths {
        let item = resolve(document, item, 0);
        let shared = item.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(operation) = item.get(method) else { continue };
            let operation = resolve(document, operation, 0);
            found.push(operation_of(document, &server, path, method, &operation, &shared)?);
            if found.len() >= MAX_OPERATIONS {
                return Ok(found);
            }
        }
    }
    if found.is_empty() {
        return Err("the document has no operations".to_owned());
    }
    Ok(found)
}

fn operation_of(
    document: &Value,
    server: &str,
    path: &str,
    method: &str,
    operation: &Value,
    shared: &[Value],
) -> Result<Operation, String> {
    let name = match operation.get("operationId").and_then(Value::as_str) {
        Some(id) => id.to_owned(),
        None => format!("{method}{}", path.replace(['/', '{', '}'], "_")),
    };
    let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let text = |key: &str| operation.get(key).and_then(Value::as_str).unwrap_or_default();
    let description = if text("description").is_empty() { text("summary") } else { text("description") };
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut places = Vec::new();
    let own = operation.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
    for parameter in shared.iter().chain(&own) {
        let parameter = resolve(document, parameter, 0);
        let Some(name) = parameter.get("name").and_then(Value::as_str) else { continue };
        let place = match parameter.get("in").and_then(Value::as_str) {
            Some("path") => Place::Path,
            Some("query") => Place::Query,
            Some("header") => Place::Header,
            _ => continue,
        };
        let mut schema = parameter
            .get("schema")
            .map(|schema| inline(document, schema, 0, &mut { MAX_SCHEMA_NODES }))
            .unwrap_or(json!({}));
        if let (Some(text), Some(object)) = (parameter.get("description"), schema.as_object_mut()) {
            object.entry("description").or_insert(text.clone());
        }
        if place == Place::Path || parameter.get("required").and_then(Value::as_bool) == Some(true) {
            required.push(json!(name));
        }
        properties.insert(name.to_owned(), schema);
        places.push((name.to_owned(), place));
    }
    if let Some(body) = operation.pointer("/requestBody") {
        let body = resolve(document, body, 0);
        if let Some(schema) = body.pointer("/content/application~1json/schema") {
            let schema = inline(document, schema, 0, &mut { MAX_SCHEMA_NODES });
            match schema.get("properties").and_then(Value::as_object) {
                Some(fields) => {
                    for (field, field_schema) in fields {
                        properties.insert(field.clone(), field_schema.clone());
                        places.push((field.clone(), Place::Body));
                    }
                    if let Some(needed) = schema.get("required").and_then(Value::as_array) {
                        required.extend(needed.iter().cloned());
                    }
                }
                None => {
                    properties.insert("body".to_owned(), schema);
                    places.push(("body".to_owned(), Place::WholeBody));
                    if body.get("required").and_then(Value::as_bool) == Some(true) {
                        required.push(json!("body"));
                    }
                }
            }
        }
    }
    let parameters = json!({ "type": "object", "properties": properties, "required": required });
    let method = method.to_ascii_uppercase().parse().map_err(|_| format!("the method {method} is not one"))?;
    Ok(Operation {
        name,
        description: description.to_owned(),
        parameters,
        method,
        url: format!("{server}{path}"),
        places,
    })
}

/// `value`, or what its `$ref` points to in the document.
fn resolve(document: &Value, value: &Value, depth: usize) -> Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) if depth < MAX_REF_DEPTH => match reference.strip_prefix('#') {
            Some(pointer) => document.pointer(pointer).map_or(Value::Null, |found| resolve(document, found, depth + 1)),
            None => Value::Null,
        },
        Some(_) => Value::Null,
        None => value.clone(),
    }
}

/// A schema with its `$ref`s replaced by what they point to, to a fixed depth (a model reads
/// the schema without the document).
/// `budget` counts the values written: a document whose references fan out (a schema naming
/// itself in a hundred properties) stops growing there instead of exploding.
fn inline(document: &Value, schema: &Value, depth: usize, budget: &mut usize) -> Value {
    if depth >= MAX_REF_DEPTH || *budget == 0 {
        return json!({});
    }
    *budget -= 1;
    match resolve(document, schema, depth) {
        Value::Object(object) => Value::Object(
            object.into_iter().map(|(key, value)| (key, inline(document, &value, depth + 1, budget))).collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| inline(document, item, depth + 1, budget)).collect())
        }
        other => other,
    }
}

impl Operation {
    /// The request of a call with `arguments`, credentials from `settings` for the document's
    /// security schemes.
    pub fn request(&self, document: &Value, arguments: &Value, settings: &Map<String, Value>) -> Request {
        let mut url = self.url.clone();
        let mut query = Vec::new();
        let mut headers = Vec::new();
        let mut body = Map::new();
        let mut whole = None;
        let text = |value: &Value| value.as_str().map_or_else(|| value.to_string(), str::to_owned);
        for (name, place) in &self.places {
            let Some(value) = arguments.get(name) else { continue };
            match place {
                Place::Path => {
                    let encoded: String = url::form_urlencoded::byte_serialize(text(value).as_bytes()).collect();
                    url = url.replace(&format!("{{{name}}}"), &encoded.replace('+', "%20"));
                }
                Place::Query => query.push((name.clone(), text(value))),
                Place::Header => headers.push((name.clone(), text(value))),
                Place::Body => {
                    body.insert(name.clone(), value.clone());
                }
                Place::WholeBody => whole = Some(value.clone()),
            }
        }
        let schemes = document.pointer("/components/securitySchemes").and_then(Value::as_object);
        for (scheme_name, scheme) in schemes.into_iter().flatten() {
            let scheme = resolve(document, scheme, 0);
            let Some(secret) = settings.get(scheme_name).map(text) else { continue };
            let kind = scheme.get("type").and_then(Value::as_str).unwrap_or_default();
            let field = scheme.get("name").and_then(Value::as_str).unwrap_or(scheme_name);
            match (kind, scheme.get("in").and_then(Value::as_str), scheme.get("scheme").and_then(Value::as_str)) {
                ("apiKey", Some("header"), _) => headers.push((field.to_owned(), secret)),
                ("apiKey", Some("query"), _) => query.push((field.to_owned(), secret)),
                ("http", _, Some(scheme)) if scheme.eq_ignore_ascii_case("bearer") => {
                    headers.push(("Authorization".to_owned(), format!("Bearer {secret}")));
                }
                ("http", _, Some(scheme)) if scheme.eq_ignore_ascii_case("basic") => {
                    use base64::Engine;
                    let encoded = base64::engine::general_purpose::STANDARD.encode(secret);
                    headers.push(("Authorization".to_owned(), format!("Basic {encoded}")));
                }
                ("oauth2", _, _) => headers.push(("Authorization".to_owned(), format!("Bearer {secret}"))),
                _ => {}
            }
        }
        if !query.is_empty() {
            let pairs = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&query).finish();
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&pairs);
        }
        let body = whole.or_else(|| (!body.is_empty()).then_some(Value::Object(body)));
        Request { method: self.method.clone(), url, headers, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        json!({
            "openapi": "3.0.1",
            "servers": [{ "url": "/api" }],
            "components": {
                "securitySchemes": { "key": { "type": "apiKey", "in": "header", "name": "X-Api-Key" } },
                "schemas": { "Note": { "type": "object", "properties": { "text": { "type": "string" } },
                                       "required": ["text"] } }
            },
            "paths": {
                "/cities/{city}/weather": { "get": {
                    "operationId": "cityWeather", "summary": "Weather of a city",
                    "parameters": [
                        { "name": "city", "in": "path", "required": true, "schema": { "type": "string" } },
                        { "name": "units", "in": "query", "schema": { "type": "string" } }
                    ] } },
                "/notes": { "post": {
                    "requestBody": { "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Note" } } } } } }
            }
        })
    }

    #[test]
    fn operations_become_tools_and_calls_become_requests() {
        let document = document();
        let found = operations(&document, Some("https://w.example.com/openapi.json")).expect("reads");
        assert_eq!(found.len(), 2);
        let weather = &found[0];
        assert_eq!((weather.name.as_str(), weather.description.as_str()), ("cityWeather", "Weather of a city"));
        assert_eq!(weather.parameters["required"], json!(["city"]));
        let settings = Map::from_iter([("key".to_owned(), json!("secret"))]);
        let request = weather.request(&document, &json!({ "city": "San José", "units": "metric" }), &settings);
        assert_eq!(request.method, reqwest::Method::GET);
        assert_eq!(request.url, "https://w.example.com/api/cities/San%20Jos%C3%A9/weather?units=metric");
        assert_eq!(request.headers, vec![("X-Api-Key".to_owned(), "secret".to_owned())]);
        let notes = &found[1];
        assert_eq!(notes.name, "post_notes");
        assert_eq!(notes.parameters["properties"]["text"]["type"], "string");
        let request = notes.request(&document, &json!({ "text": "hi" }), &Map::new());
        assert_eq!((request.method, request.body), (reqwest::Method::POST, Some(json!({ "text": "hi" }))));
    }

    #[test]
    fn documents_that_cannot_be_used_say_why() {
        assert!(operations(&json!({ "swagger": "2.0" }), None).expect_err("2.0").contains("OpenAPI 3"));
        let relative = json!({ "openapi": "3.1.0", "servers": [{ "url": "/api" }], "paths": {} });
        assert!(operations(&relative, None).expect_err("relative").contains("absolute"));
        // A reference that loops ends.
        let looping = json!({ "openapi": "3.0.0", "servers": [{ "url": "https://a.example" }],
            "components": { "schemas": { "A": { "$ref": "#/components/schemas/A" } } },
            "paths": { "/a": { "post": { "requestBody": { "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/A" } } } } } } } });
        assert_eq!(operations(&looping, None).expect("reads").len(), 1);
        // References that fan out are followed within a budget, not exponentially.
        let properties: serde_json::Map<String, Value> =
            (0..50).map(|n| (format!("p{n}"), json!({ "$ref": "#/components/schemas/A" }))).collect();
        let fanning = json!({ "openapi": "3.0.0", "servers": [{ "url": "https://a.example" }],
            "components": { "schemas": { "A": { "type": "object", "properties": properties } } },
            "paths": { "/a": { "post": { "requestBody": { "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/A" } } } } } } } });
        let started = std::time::Instant::now();
        let found = operations(&fanning, None).expect("reads");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(found[0].parameters.to_string().len() < 1_000_000);
    }
}

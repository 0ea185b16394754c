//! Typed reads of a JSON request body, field by field, so every error names the
//! parameter at fault (`param`) instead of a serde path.
//!
//! No-code tools (n8n, Make, Zapier) often send numbers as strings; a string holding
//! a number is accepted where a number is expected. Empty optional strings count as
//! absent, as those tools send them for unset fields.

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};

/// The fields of one JSON object, consumed as they are read; what is left at
/// [`Fields::finish`] is unknown and rejected, so typos do not pass silently.
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    pub fn from_body(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidJson,
                "The request body is empty; send a JSON object.",
            ));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Self { map }),
            Ok(_) => Err(ApiError::bad_request(
                ErrorCode::InvalidJson,
                "The request body must be a JSON object.",
            )),
            Err(e) => Err(ApiError::invalid_json(e)),
        }
    }

    pub fn from_map(map: Map<String, Value>) -> Self {
        Self { map }
    }

    /// Removes a field; JSON `null` reads as absent.
    fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    /// Reads the first present of several names (an alias pair such as
    /// `replyUrl`/`webhook_url`); both present with different values is an error.
    pub fn string_alias(&mut self, names: &[&str]) -> Result<Option<(String, String)>, ApiError> {
        let mut found: Option<(String, String)> = None;
        for name in names {
            if let Some(v) = self.string(name)? {
                match &found {
                    Some((first, prev)) if *prev != v => {
                        return Err(ApiError::invalid_param(
                            name,
                            ErrorCode::InvalidValue,
                            format!("`{name}` and `{first}` are aliases; send one of them."),
                        ))
                    }
                    Some(_) => {}
                    None => found = Some(((*name).to_owned(), v)),
                }
            }
        }
        Ok(found)
    }

    /// A string; an empty string reads as absent.
    pub fn string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(type_error(name, "a string", &other)),
        }
    }

    /// A string that must be present and non-empty.
    pub fn required_string(&mut self, name: &str) -> Result<String, ApiError> {
        match self.take(name) {
            None => Err(ApiError::invalid_param(
                name,
                ErrorCode::MissingParameter,
                format!("`{name}` is required."),
            )),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(type_error(name, "a string", &other)),
        }
    }

    /// An integer (or a string holding one).
    pub fn int(&mut self, name: &str) -> Result<Option<i64>, ApiError> {
        let v = match self.take(name) {
            None => return Ok(None),
            Some(v) => v,
        };
        let parsed = match &v {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| type_error(name, "an integer", &v))
    }

    /// A number (or a string holding one).
    pub fn float(&mut self, name: &str) -> Result<Option<f64>, ApiError> {
        let v = match self.take(name) {
            None => return Ok(None),
            Some(v) => v,
        };
        let parsed = match &v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        parsed
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| type_error(name, "a number", &v))
    }

    /// A number's exact decimal text (a JSON number or a string), for money amounts
    /// that must not pass through floating point.
    pub fn decimal_text(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(type_error(name, "a number", &other)),
        }
    }

    /// A boolean (or the string `"true"`/`"false"`).
    pub fn boolean(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(other) => Err(type_error(name, "a boolean", &other)),
        }
    }

    /// An array of strings.
    pub fn string_list(&mut self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(type_error(name, "an array of strings", &other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(type_error(name, "an array of strings", &other)),
        }
    }

    /// Rejects whatever was not read.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.map.keys().min() {
            None => Ok(()),
            Some(name) => Err(ApiError::invalid_param(
                name,
                ErrorCode::UnknownParameter,
                format!("Unrecognized request argument supplied: `{name}`."),
            )),
        }
    }
}

fn type_error(name: &str, expected: &str, got: &Value) -> ApiError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ApiError::invalid_param(
        name,
        ErrorCode::InvalidType,
        format!("`{name}` must be {expected}, not {kind}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        Fields::from_body(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn bodies_that_are_not_objects() {
        for body in ["", "  ", "[]", "3", "{", "{\"a\":}"] {
            let err = Fields::from_body(body.as_bytes()).err().expect(body);
            assert_eq!(
                (err.status(), err.code().as_str()),
                (400, "invalid_json"),
                "{body}"
            );
        }
    }

    #[test]
    fn numbers_from_strings_for_no_code_tools() {
        let mut f = fields(json!({"w": "1024", "c": "4.5", "b": "true", "x": 512.0}));
        assert_eq!(f.int("w").unwrap(), Some(1024));
        assert_eq!(f.float("c").unwrap(), Some(4.5));
        assert_eq!(f.boolean("b").unwrap(), Some(true));
        assert_eq!(f.int("x").unwrap(), Some(512));
        f.finish().unwrap();
    }

    #[test]
    fn type_errors_name_the_param() {
        for (body, name) in [
            (json!({"w": "wide"}), "w"),
            (json!({"w": 1.5}), "w"),
            (json!({"w": [1]}), "w"),
            (json!({"w": true}), "w"),
        ] {
            let err = fields(body).int(name).unwrap_err();
            assert_eq!(
                (err.param(), err.code().as_str()),
                (Some(name), "invalid_type")
            );
        }
    }

    #[test]
    fn unknown_fields_are_rejected_by_name() {
        let mut f = fields(json!({"prompt": "x", "widht": 3}));
        f.string("prompt").unwrap();
        let err = f.finish().unwrap_err();
        assert_eq!(
            (err.param(), err.code().as_str()),
            (Some("widht"), "unknown_parameter")
        );
    }

    #[test]
    fn aliases() {
        let mut f = fields(json!({"replyUrl": "a", "webhook_url": "a"}));
        assert_eq!(
            f.string_alias(&["replyUrl", "webhook_url"]).unwrap(),
            Some(("replyUrl".into(), "a".into()))
        );
        let mut f = fields(json!({"replyUrl": "a", "webhook_url": "b"}));
        assert!(f.string_alias(&["replyUrl", "webhook_url"]).is_err());
    }
}

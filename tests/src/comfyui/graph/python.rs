//! Python's conversions and printing of values, as ComfyUI's checks and messages show
//! them.

use serde_json::Value;

/// Python's `repr` of a value, enough for error details.
pub(super) fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// Python's `str` of a value.
pub(super) fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Formats a number as Python prints an int or a float.
pub(super) fn py_num(x: f64, is_int: bool) -> String {
    if is_int {
        format!("{}", x as i128)
    } else if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// Python's `int(v)`.
pub(super) fn py_int(v: &Value) -> Result<i128, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().map(|f| f.trunc() as i128))
            .ok_or_else(|| format!("invalid literal for int() with base 10: '{n}'")),
        Value::Bool(b) => Ok(i128::from(*b)),
        Value::String(s) => s
            .trim()
            .parse::<i128>()
            .map_err(|_| format!("invalid literal for int() with base 10: '{s}'")),
        Value::Null => Err(
            "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'"
                .into(),
        ),
        _ => Err(
            "int() argument must be a string, a bytes-like object or a real number, not 'dict'"
                .into(),
        ),
    }
}

/// Python's `float(v)`.
pub(super) fn py_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| "bad number".to_string()),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("could not convert string to float: '{s}'")),
        Value::Null => {
            Err("float() argument must be a string or a real number, not 'NoneType'".into())
        }
        _ => Err("float() argument must be a string or a real number, not 'dict'".into()),
    }
}

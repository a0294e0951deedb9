//! A digest of a JSON document that does not depend on key order or white space, so that a
//! retried request with the same content is recognised as the same request.

use serde_json::Value;

pub fn digest(value: &Value) -> String {
    sha256_hex(&bytes(value))
}

/// The canonical form itself: keys sorted, no white space (what signatures are made over).
pub fn bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write(value, &mut out);
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    crate::pki::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(&Value::String(k.clone()), out);
                out.push(b':');
                write(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(v, out);
            }
            out.push(b']');
        }
        scalar => {
            if let Ok(bytes) = serde_json::to_vec(scalar) {
                out.extend_from_slice(&bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_order_and_spacing_do_not_matter_but_values_do() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"a":1,"b":{"y":[1,2],"x":"s"}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "b": {"x":"s","y":[1,2]}, "a": 1 }"#).unwrap();
        let c: serde_json::Value =
            serde_json::from_str(r#"{"a":1,"b":{"y":[2,1],"x":"s"}}"#).unwrap();
        assert_eq!(super::digest(&a), super::digest(&b));
        assert_ne!(super::digest(&a), super::digest(&c));
    }
}

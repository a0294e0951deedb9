//! The console's templates (minijinja, autoescaped HTML), compiled into the binary. Templates
//! hold no text of their own: every word comes from the catalogs through `t(key, **args)`.

use super::i18n::{self, Lang};
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind, State};
use std::sync::OnceLock;

pub const TEMPLATES: [(&str, &str); 5] = [
    (
        "base.html",
        include_str!("../../console/templates/base.html"),
    ),
    (
        "signin.html",
        include_str!("../../console/templates/signin.html"),
    ),
    (
        "home.html",
        include_str!("../../console/templates/home.html"),
    ),
    (
        "message.html",
        include_str!("../../console/templates/message.html"),
    ),
    (
        "monitoring.html",
        include_str!("../../console/templates/monitoring.html"),
    ),
];

pub const STYLESHEET: &str = include_str!("../../console/static/console.css");

fn environment() -> Result<&'static Environment<'static>, Error> {
    static ENV: OnceLock<Result<Environment<'static>, Error>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        env.add_function("t", translate);
        Ok(env)
    })
    .as_ref()
    .map_err(|e| Error::new(e.kind(), e.to_string()))
}

/// `t("key", name=...)`: the catalog text in the page's language, with `{name}` filled in.
fn translate(state: &State, key: &str, args: Kwargs) -> Result<String, Error> {
    let lang = state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Lang::from_code))
        .unwrap_or(Lang::It);
    let mut text = i18n::text(lang, key)
        .ok_or_else(|| Error::new(ErrorKind::UndefinedError, format!("no text for {key:?}")))?
        .to_owned();
    for name in args.args() {
        let value: Value = args.get(name)?;
        text = text.replace(&format!("{{{name}}}"), &value.to_string());
    }
    Ok(text)
}

/// Renders a page; `context` must carry `lang`.
pub fn render(name: &str, context: Value) -> Result<String, Error> {
    environment()?.get_template(name)?.render(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorization::Role;

    /// What is left of a template once tags, expressions and statements are removed.
    fn bare_text(source: &str) -> String {
        let mut out = String::new();
        let mut rest = source;
        while let Some(start) = rest.find(['<', '{']) {
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            let close = if after.starts_with("{{") {
                "}}"
            } else if after.starts_with("{%") {
                "%}"
            } else if after.starts_with('<') {
                ">"
            } else {
                out.push('{');
                rest = &after[1..];
                continue;
            };
            match after.find(close) {
                Some(end) => rest = &after[end + close.len()..],
                None => return out,
            }
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn templates_hold_no_text_of_their_own() {
        for (name, source) in TEMPLATES {
            let bare = bare_text(source);
            assert!(
                !bare.chars().any(char::is_alphabetic),
                "{name} has text outside the catalogs: {:?}",
                bare.split_whitespace().collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn every_key_the_templates_use_exists_in_every_language() {
        let mut keys: Vec<String> = Vec::new();
        for (_, source) in TEMPLATES {
            for part in source.split("t(\"").skip(1) {
                // Keys built from parts (`"role." ~ role ~ ".title"`) are listed below.
                if let Some(end) = part.find('"')
                    && !part[end + 1..].trim_start().starts_with('~')
                {
                    keys.push(part[..end].to_owned());
                }
            }
        }
        for role in Role::PEOPLE {
            keys.push(format!("role.{}.title", role.as_str()));
            keys.push(format!("role.{}.intro", role.as_str()));
        }
        for code in super::super::MESSAGES {
            keys.push(format!("error.{code}"));
        }
        assert!(keys.len() > 20);
        for lang in Lang::ALL {
            for key in &keys {
                assert!(i18n::text(lang, key).is_some(), "{key} missing in {lang:?}");
            }
        }
    }

    #[test]
    fn pages_render_escaped_in_both_languages() {
        for lang in Lang::ALL {
            let html = render(
                "home.html",
                minijinja::context! {
                    lang => lang.code(), name => "<script>x</script>", csrf => "c",
                    roles => vec!["analyst", "admin"], pending_reviews => 2,
                },
            )
            .unwrap();
            assert!(html.contains("&lt;script&gt;"), "{html}");
            assert!(!html.contains("<script>"));
            assert!(html.contains(&format!("lang=\"{}\"", lang.code())));
            assert!(html.contains("data-role=\"admin\""));
        }
    }
}

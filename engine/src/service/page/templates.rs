//! The page's templates (minijinja, HTML-escaped), embedded in the binary.

use std::sync::OnceLock;

use axum::response::Html;
use minijinja::Environment;
use serde::Serialize;

use super::error::PageError;

const TEMPLATES: [(&str, &str); 9] = [
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("message.html", include_str!("templates/message.html")),
    ("history.html", include_str!("templates/history.html")),
    ("row.html", include_str!("templates/row.html")),
    ("badge.html", include_str!("templates/badge.html")),
    ("detail.html", include_str!("templates/detail.html")),
    ("delete.html", include_str!("templates/delete.html")),
    ("new.html", include_str!("templates/new.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            // Embedded at build time; the unit test below parses each one.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "a page template does not parse");
            }
        }
        env
    })
}

/// A structured value for a template's context.
pub fn value<T: Serialize>(v: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(v))
}

/// Renders template `name` with `context`.
pub fn render(name: &'static str, context: minijinja::Value) -> Result<Html<String>, PageError> {
    let template = env().get_template(name).map_err(|source| PageError::Template { name, source })?;
    template.render(context).map(Html).map_err(|source| PageError::Template { name, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_escapes() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
        let html = render("message.html", minijinja::context! { title => "T", message => "<script>x</script>", status => 400 }).unwrap();
        assert!(html.0.contains("&lt;script&gt;") && !html.0.contains("<script>x"), "{}", html.0);
    }
}

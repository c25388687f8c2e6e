//! The one HTML helper of the test suite: pages parsed with `scraper` (html5ever, Servo's
//! parser), so entities, quoting and nesting are read as a browser reads them. Both servers'
//! pages go through it: forms and their fields, the visible text, an element's text, links.
//!
//! `scraper`'s document is not `Send`, so helpers keep pages as text and parse on demand.

#![allow(dead_code)] // not every module uses every helper

use scraper::{ElementRef, Html, Selector};

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("a valid CSS selector")
}

/// A `<form>`: where it posts and its named fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The `action` attribute as written (resolve it against the page's URL).
    pub action: String,
    /// The `method` attribute, lower case (`get` when absent).
    pub method: String,
    /// Every named `<input>`, `<select>`, `<textarea>` and `<button>`: (name, value, type).
    pub fields: Vec<Field>,
}

/// A named form control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
    /// The `type` of an input (`text` when absent), or the element name otherwise.
    pub kind: String,
}

impl Form {
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.name == name)
    }

    /// The value of the field `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }

    /// The hidden fields, as a form submission would send them.
    pub fn hidden(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter(|f| f.kind == "hidden")
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect()
    }

    /// What a browser sends when nothing is typed: every field but unticked checkboxes and
    /// buttons.
    pub fn defaults(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter(|f| !matches!(f.kind.as_str(), "checkbox" | "radio" | "submit" | "button"))
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect()
    }
}

fn form_of(form: ElementRef<'_>) -> Form {
    let fields = form
        .select(&selector(
            "input[name], select[name], textarea[name], button[name]",
        ))
        .map(|el| {
            let e = el.value();
            let kind = match e.name() {
                "input" => e.attr("type").unwrap_or("text").to_ascii_lowercase(),
                other => other.to_owned(),
            };
            let value = match e.name() {
                "textarea" => el.text().collect(),
                _ => e.attr("value").unwrap_or_default().to_owned(),
            };
            Field {
                name: e.attr("name").unwrap_or_default().to_owned(),
                value,
                kind,
            }
        })
        .collect();
    Form {
        action: form.value().attr("action").unwrap_or_default().to_owned(),
        method: form.value().attr("method").unwrap_or("get").to_ascii_lowercase(),
        fields,
    }
}

/// Every form of `html`, in document order.
pub fn forms(html: &str) -> Vec<Form> {
    let doc = Html::parse_document(html);
    doc.select(&selector("form")).map(form_of).collect()
}

/// The first form with a field `name`.
pub fn form_with_field(html: &str, name: &str) -> Option<Form> {
    forms(html).into_iter().find(|f| f.has_field(name))
}

/// The page's visible words (title and body), whitespace collapsed.
pub fn text(html: &str) -> String {
    let doc = Html::parse_document(html);
    let words: Vec<&str> = doc
        .root_element()
        .text()
        .flat_map(str::split_whitespace)
        .collect();
    words.join(" ")
}

/// The text of the element with `id`, trimmed.
pub fn element_text(html: &str, id: &str) -> Option<String> {
    let doc = Html::parse_document(html);
    let el = doc.select(&selector(&format!("#{id}"))).next()?;
    Some(el.text().collect::<String>().trim().to_owned())
}

/// The value of attribute `attr` on every element matching `css`.
pub fn attrs(html: &str, css: &str, attr: &str) -> Vec<String> {
    let doc = Html::parse_document(html);
    doc.select(&selector(css))
        .filter_map(|el| el.value().attr(attr).map(str::to_owned))
        .collect()
}

/// The first link (`<a href>`) whose target starts with `prefix`.
pub fn link_starting_with(html: &str, prefix: &str) -> Option<String> {
    attrs(html, "a[href]", "href")
        .into_iter()
        .find(|h| h.starts_with(prefix))
}

#[test]
fn forms_fields_and_text_are_read_as_a_browser_reads_them() {
    let html = r#"<!doctype html><title>T &amp; C</title>
        <form method=POST action="/a?x=1&amp;y=2"><input type=hidden name=csrf_token value='a"b'>
        <input name=code><label><input type="checkbox" name="remember" value="on"> Keep</label>
        <button>Go</button></form>
        <p id="secret"> JBSW&#89;3DP </p><a href="/login?return_to=%2F&amp;step_up=salary">Continue</a>"#;
    let form = &forms(html)[0];
    assert_eq!(form.action, "/a?x=1&y=2");
    assert_eq!(form.method, "post");
    assert_eq!(form.hidden(), [("csrf_token".to_owned(), "a\"b".to_owned())]);
    assert!(form.has_field("code") && form.has_field("remember"));
    assert_eq!(form.defaults().len(), 2, "an unticked checkbox is not sent");
    assert_eq!(element_text(html, "secret").as_deref(), Some("JBSWY3DP"));
    assert_eq!(
        link_starting_with(html, "/login?").as_deref(),
        Some("/login?return_to=%2F&step_up=salary")
    );
    assert!(text(html).starts_with("T & C"), "{}", text(html));
    assert!(form_with_field(html, "missing").is_none());
}

//! The frame every page shares: head, navigation, who is logged in.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::assets;
use super::csrf;
use crate::api::Caller;

/// Which navigation entry is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Builds,
    Grid,
    Workers,
    Sources,
    /// Login and error pages.
    None,
}

/// A whole page. Every value interpolated with `(…)` in maud is
/// HTML-escaped; nothing here uses `PreEscaped` on input.
pub fn page(title: &str, caller: &Caller, nav_active: Nav, body: Markup) -> Markup {
    let entry = |nav: Nav, href: &str, label: &str| {
        html! {
            a href=(href) class=[(nav == nav_active).then_some("active")] { (label) }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · burst" }
                link rel="stylesheet" href=(assets::css_href());
                script src=(assets::js_href()) defer {}
            }
            body {
                header id="top" {
                    a.brand href="/" { "burst" }
                    nav {
                        (entry(Nav::Builds, "/builds", "Builds"))
                        (entry(Nav::Grid, "/grid", "Grid"))
                        (entry(Nav::Workers, "/workers", "Workers"))
                        (entry(Nav::Sources, "/sources", "Sources"))
                    }
                    div id="who" {
                        @if caller.is_token() {
                            span.user { (caller.name) " (" (caller.role.as_str()) ")" }
                            @if caller.csrf.is_some() {
                                form.inline method="post" action=(super::router::LOGOUT) {
                                    (csrf_field(caller))
                                    button id="logout" type="submit" { "Log out" }
                                }
                            }
                        } @else {
                            a href=(super::router::LOGIN) { "Log in" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The hidden CSRF field for a form: empty for bearer-token callers, who
/// need none.
pub fn csrf_field(caller: &Caller) -> Markup {
    html! {
        @if let Some(token) = &caller.csrf {
            input type="hidden" name=(csrf::FIELD) value=(token.as_str());
        }
    }
}

/// Marks up nothing: where a page has no content for a slot.
pub fn empty() -> Markup {
    PreEscaped(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    #[test]
    fn the_frame_escapes_the_title_and_the_user() {
        let caller = Caller {
            name: "<img src=x onerror=alert(1)>".to_owned(),
            role: Role::Viewer,
            csrf: None,
        };
        let html = page("<script>x</script>", &caller, Nav::Builds, empty()).into_string();
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("&lt;script&gt;x"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains(r#"<a href="/builds" class="active">"#),
            "{html}"
        );
        assert!(
            !html.contains("id=\"logout\""),
            "no session, no logout form"
        );
    }

    #[test]
    fn the_frame_loads_nothing_from_elsewhere() {
        let caller = Caller::anonymous();
        let html = page("t", &caller, Nav::Grid, empty()).into_string();
        for external in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "@import",
        ] {
            assert!(!html.contains(external), "{external} in {html}");
        }
        // Its only script and stylesheet are the embedded assets.
        assert_eq!(html.matches("<script").count(), 1, "{html}");
        assert!(
            html.contains(&format!("src=\"{}\"", assets::js_href())),
            "{html}"
        );
        assert!(
            html.contains(&format!("href=\"{}\"", assets::css_href())),
            "{html}"
        );
        assert!(assets::js_href().starts_with(super::super::router::ASSETS));
        assert!(assets::css_href().starts_with(super::super::router::ASSETS));
    }
}

//! The demo page (`GET /`) and the operator's console (`GET /console`): plain HTML, CSS and JavaScript from `assets/`, compiled into the
//! binary so the daemon serves it from wherever it runs, with no network needed.

/// A static file: content type and body.
pub type Asset = (&'static str, &'static str);

const INDEX: Asset = ("text/html; charset=utf-8", include_str!("../../assets/index.html"));
const SCRIPT: Asset = ("text/javascript; charset=utf-8", include_str!("../../assets/app.js"));
const STYLE: Asset = ("text/css; charset=utf-8", include_str!("../../assets/style.css"));
const CONSOLE: Asset = ("text/html; charset=utf-8", include_str!("../../assets/console.html"));
const CONSOLE_SCRIPT: Asset = ("text/javascript; charset=utf-8", include_str!("../../assets/console.js"));
const CONSOLE_STYLE: Asset = ("text/css; charset=utf-8", include_str!("../../assets/console.css"));

/// The asset served at `path`, if any.
pub fn get(path: &str) -> Option<Asset> {
    match path {
        "/" | "/index.html" => Some(INDEX),
        "/app.js" => Some(SCRIPT),
        "/style.css" => Some(STYLE),
        "/console" | "/console.html" => Some(CONSOLE),
        "/console.js" => Some(CONSOLE_SCRIPT),
        "/console.css" => Some(CONSOLE_STYLE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_and_what_they_link_are_served() {
        for (page, links) in
            [("/", ["/app.js", "/style.css", "/console"]), ("/console", ["/console.js", "/console.css", "/"])]
        {
            let (ct, html) = get(page).unwrap();
            assert!(ct.starts_with("text/html"));
            for linked in links {
                assert!(html.contains(&format!("\"{linked}\"")), "{page} does not link {linked}");
                assert!(get(linked).is_some(), "{linked} is not served");
            }
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "{page} must fetch nothing from elsewhere"
            );
        }
        let (_, html) = get("/").unwrap();
        for linked in ["/app.js", "/style.css"] {
            assert!(html.contains(linked), "the page does not link {linked}");
            assert!(get(linked).is_some(), "{linked} is not served");
        }
        assert!(!html.contains("http://") && !html.contains("https://"), "the page must fetch nothing from elsewhere");
        assert!(get("/../Cargo.toml").is_none());
    }
}

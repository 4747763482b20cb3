//! `is_in_app`: one assertion per rule.

use sightline_errors::stack::is_in_app;

#[test]
fn first_party_urls_and_paths_are_in_app() {
    assert!(is_in_app("https://cdn.shop.example/static/app.3f9a1c.js"));
    assert!(is_in_app("https://shop.example/static/app.js"));
    assert!(is_in_app("/srv/app/server.js"));
    assert!(is_in_app("webpack-internal:///./src/a.js"));
    assert!(is_in_app(r"C:\app\x.js"));
    assert!(is_in_app("http://localhost:8080/js/app.js"));
}

#[test]
fn chrome_extension_is_not_in_app() {
    assert!(!is_in_app("chrome-extension://abcdefghijklmnop/content.js"));
}

#[test]
fn moz_extension_is_not_in_app() {
    assert!(!is_in_app("moz-extension://2b5d7c4e-1f3a-4b8e-9c6d-0a1b2c3d4e5f/content.js"));
}

#[test]
fn safari_extension_is_not_in_app() {
    assert!(!is_in_app("safari-extension://com.example.ext-ABCDEF/script.js"));
}

#[test]
fn safari_web_extension_is_not_in_app() {
    assert!(!is_in_app("safari-web-extension://E1F2A3B4-C5D6-7890-ABCD-EF1234567890/content.js"));
}

#[test]
fn node_modules_is_not_in_app() {
    assert!(!is_in_app("/srv/app/node_modules/express/lib/router/layer.js"));
}

#[test]
fn node_modules_windows_is_not_in_app() {
    assert!(!is_in_app(r"C:\app\node_modules\dotenv\lib\main.js"));
}

#[test]
fn node_modules_lookalike_is_in_app() {
    assert!(is_in_app("/srv/app/my_node_modules/x.js"));
}

#[test]
fn node_scheme_internals_are_not_in_app() {
    assert!(!is_in_app("node:internal/timers"));
}

#[test]
fn legacy_node_internals_are_not_in_app() {
    assert!(!is_in_app("internal/modules/cjs/loader.js"));
}

#[test]
fn native_code_is_not_in_app() {
    assert!(!is_in_app("[native code]"));
}

#[test]
fn v8_native_is_not_in_app() {
    assert!(!is_in_app("native"));
}

#[test]
fn anonymous_is_not_in_app() {
    assert!(!is_in_app("<anonymous>"));
}

#[test]
fn empty_is_not_in_app() {
    assert!(!is_in_app(""));
}

#[test]
fn cdn_jsdelivr_is_not_in_app() {
    assert!(!is_in_app("https://cdn.jsdelivr.net/npm/jquery@3.7.1/dist/jquery.min.js"));
}

#[test]
fn unpkg_is_not_in_app() {
    assert!(!is_in_app("https://unpkg.com/react@18/umd/react.production.min.js"));
}

#[test]
fn cdnjs_is_not_in_app() {
    assert!(!is_in_app("https://cdnjs.cloudflare.com/ajax/libs/lodash.js/4.17.21/lodash.min.js"));
}

#[test]
fn google_hosted_libraries_is_not_in_app() {
    assert!(!is_in_app("https://ajax.googleapis.com/ajax/libs/jquery/3.7.1/jquery.min.js"));
}

#[test]
fn code_jquery_is_not_in_app() {
    assert!(!is_in_app("https://code.jquery.com/jquery-3.7.1.min.js"));
}

#[test]
fn skypack_is_not_in_app() {
    assert!(!is_in_app("https://cdn.skypack.dev/preact"));
}

#[test]
fn esm_sh_is_not_in_app() {
    assert!(!is_in_app("https://esm.sh/@scope/pkg@1.2.3/es2022/pkg.mjs"));
}

#[test]
fn cloudflare_insights_is_not_in_app() {
    assert!(!is_in_app("https://static.cloudflareinsights.com/beacon.min.js"));
}

#[test]
fn google_tag_manager_is_not_in_app() {
    assert!(!is_in_app("https://www.googletagmanager.com/gtag/js?id=G-XXXXXXX"));
}

#[test]
fn google_analytics_is_not_in_app() {
    assert!(!is_in_app("https://www.google-analytics.com/analytics.js"));
}

#[test]
fn facebook_connect_is_not_in_app() {
    assert!(!is_in_app("https://connect.facebook.net/en_US/fbevents.js"));
}

#[test]
fn cdn_host_match_ignores_case_port_and_userinfo() {
    assert!(!is_in_app("HTTPS://UNPKG.COM:443/x.js"));
    assert!(!is_in_app("//code.jquery.com/jquery.js"));
}

#[test]
fn cdn_name_in_path_or_lookalike_host_is_in_app() {
    assert!(is_in_app("https://shop.example/unpkg.com/x.js"));
    assert!(is_in_app("https://notunpkg.com/x.js"));
    assert!(is_in_app("https://unpkg.com.shop.example/x.js"));
}

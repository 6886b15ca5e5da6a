//! The sign-in page: a plain form posted to `/signin` (works without JavaScript).

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// What went wrong, in words; `wait` is how many seconds the server asked to wait.
fn message(error: &str, wait: Option<u64>) -> String {
    match (error, wait) {
        ("invalid", _) => "That email and password do not match an account.".to_owned(),
        ("too_many", Some(wait)) => format!(
            "Too many failed attempts. Try again in {wait} second{} (or ask an admin to check your account).",
            if wait == 1 { "" } else { "s" }
        ),
        ("too_many", None) => {
            "Too many failed attempts. Wait a few minutes, then try again (or ask an admin to check your account).".to_owned()
        }
        ("busy", _) => "Many people are signing in just now; please try again in a moment.".to_owned(),
        ("missing", _) => "Enter your email and password.".to_owned(),
        _ => "Signing in is not possible just now; please try again.".to_owned(),
    }
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || {
        let query = query.read();
        let wait = query.get("wait").and_then(|w| w.parse().ok());
        query.get("error").map(|e| message(&e, wait))
    };
    let signed_out = move || query.read().get("signed_out").is_some();
    let next = move || query.read().get("next").unwrap_or_default();
    view! {
        <section class="panel narrow">
            <h1>"Sign in to Engage"</h1>
            {move || signed_out().then(|| view! { <p class="form-status" role="status">"You are signed out."</p> })}
            {move || error().map(|text| view! { <p class="error" role="alert" id="signin-error">{text}</p> })}
            <form method="post" action="/signin" class="stacked-form">
                <input type="hidden" name="next" value=next/>
                <div class="field">
                    <label for="signin-email">"Email"</label>
                    <input id="signin-email" name="email" type="email" autocomplete="username" required/>
                </div>
                <div class="field">
                    <label for="signin-password">"Password"</label>
                    <input id="signin-password" name="password" type="password" autocomplete="current-password" required/>
                </div>
                <button type="submit">"Sign in"</button>
            </form>
        </section>
    }
}

//! Engage's web UI, rendered on the server and hydrated in the browser.
//!
//! Each page lives in `routes/` with its types, server functions and components together.
//! Server functions reach storage only through the [`service::EngageService`] handle that
//! the server provides as context; the browser build never sees it.

pub mod error;
pub mod form;
pub mod live;
pub mod routes;
#[cfg(feature = "ssr")]
pub mod service;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::{SsrMode, path};
use routes::api_keys::ApiKeysPage;
use routes::client_detail::ClientDetailPage;
use routes::client_form::{EditClientPage, NewClientPage};
use routes::clients::ClientsPage;
use routes::dashboard::DashboardPage;
use routes::dlq::DeadLettersPage;
use routes::email_detail::EmailDetailPage;
use routes::emails::EmailsPage;
use routes::signin::SignInPage;

/// Who is signed in, for the header: email and role.
#[server]
pub async fn whoami() -> Result<Option<(String, String)>, error::AppError> {
    Ok(service::signed_in().map(|user| {
        (
            user.email.as_str().to_owned(),
            user.role.as_str().to_owned(),
        )
    }))
}

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The bundle's files carry a content hash in their names (the server's build.rs).
    let stylesheet = format!("/{}/{}.css", options.site_pkg_dir, options.output_name);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <link rel="stylesheet" id="leptos" href=stylesheet/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The app: navigation and the page routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="Engage"/>
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="topbar">
                <a class="brand" href="/">"Engage"</a>
                <Account/>
            </header>
            <main id="main">
                // Every page waits for its data before the HTML is sent, so each page is
                // complete without JavaScript.
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=ClientsPage ssr=SsrMode::Async/>
                    <Route path=path!("/signin") view=SignInPage ssr=SsrMode::Async/>
                    <Route path=path!("/clients/new") view=NewClientPage ssr=SsrMode::Async/>
                    <Route path=path!("/clients/:id") view=ClientDetailPage ssr=SsrMode::Async/>
                    <Route path=path!("/clients/:id/edit") view=EditClientPage ssr=SsrMode::Async/>
                    <Route path=path!("/emails") view=EmailsPage ssr=SsrMode::Async/>
                    <Route path=path!("/emails/:id") view=EmailDetailPage ssr=SsrMode::Async/>
                    <Route path=path!("/dashboard") view=DashboardPage ssr=SsrMode::Async/>
                    <Route path=path!("/dlq") view=DeadLettersPage ssr=SsrMode::Async/>
                    <Route path=path!("/api-keys") view=ApiKeysPage ssr=SsrMode::Async/>
                </Routes>
            </main>
            // Last, so the page's other islands are interactive before it marks the page so.
            <live::LiveUpdates/>
        </Router>
    }
}

/// The main navigation (the dashboard for managers and admins), the signed-in account and
/// the sign-out button (a plain form post).
#[component]
fn Account() -> impl IntoView {
    let me = Resource::new(|| (), |_| whoami());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                me.await.ok().flatten().map(|(email, role)| {
                    let manager = role != "stylist";
                    let admin = role == "admin";
                    view! {
                        <nav aria-label="Main">
                            <A href="/" exact=true>"Clients"</A>
                            <A href="/emails">"Emails"</A>
                            {manager.then(|| view! { <A href="/dashboard">"Dashboard"</A> })}
                            {admin.then(|| view! { <A href="/api-keys">"API keys"</A> })}
                        </nav>
                        <div class="account">
                            <span class="who" id="signed-in-as">{email}" · "{role}</span>
                            <form method="post" action="/signout">
                                <button type="submit" class="link">"Sign out"</button>
                            </form>
                        </div>
                    }
                })
            })}
        </Suspense>
    }
}

/// Shown for any address that is not a page.
#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <section class="panel">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <a href="/">"Back to clients"</a></p>
        </section>
    }
}

/// Entry point of the browser bundle: the pages stay server-rendered HTML, and only their
/// islands (`#[island]` components) become interactive.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}

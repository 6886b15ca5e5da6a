//! Forms in islands, posted the way the browser encodes them.
//!
//! A form island sends its `<form>` to its server function with `fetch`, as
//! `application/x-www-form-urlencoded` straight from the browser's `FormData`, and reads
//! the JSON answer. Leptos's `ActionForm` does the same work by reading the form into the
//! server function's argument struct and writing it out again, which puts a query-string
//! serializer and an action per form into the browser bundle (see bench/REPORT.md). Without
//! JavaScript the same `<form>` posts natively, and the server function answers as for any
//! plain post (redirecting back, with an error in the address).

use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use serde::de::DeserializeOwned;

/// A form's server function: its last answer, whether a submission is on its way, and how
/// many have been answered.
pub struct FormAction<O: 'static> {
    url: &'static str,
    value: RwSignal<Option<Result<O, AppError>>>,
    pending: RwSignal<bool>,
    version: RwSignal<usize>,
}

impl<O> Clone for FormAction<O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<O> Copy for FormAction<O> {}

impl<O> FormAction<O>
where
    O: DeserializeOwned + Send + Sync + 'static,
{
    /// The action of server function `S`. A plain post's error that came back in the
    /// address (`?__path=…&__err=…`) is its first answer, on the server and in the browser
    /// alike, so the page shows it and hydrates.
    pub fn new<S>() -> Self
    where
        S: ServerFn<Output = O, Error = AppError>,
    {
        let first = error_in_address(Some(S::PATH)).map(Err);
        Self {
            url: S::PATH,
            value: RwSignal::new(first),
            pending: RwSignal::new(false),
            version: RwSignal::new(0),
        }
    }

    /// The last answer, if any.
    pub fn value(&self) -> RwSignal<Option<Result<O, AppError>>> {
        self.value
    }

    /// A submission is on its way.
    pub fn pending(&self) -> RwSignal<bool> {
        self.pending
    }

    /// How many answers have come back.
    pub fn version(&self) -> RwSignal<usize> {
        self.version
    }

    /// The form's own address: where it posts without JavaScript.
    pub fn url(&self) -> &'static str {
        self.url
    }

    #[cfg(feature = "hydrate")]
    fn submit(self, event: leptos::ev::SubmitEvent) {
        use wasm_bindgen::JsCast;
        let Some(form) = event
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
        else {
            return;
        };
        // Read now: the fields may change while the answer is on its way.
        let Some(body) = web_sys::FormData::new_with_form(&form)
            .and_then(|data| web_sys::UrlSearchParams::new_with_str_sequence_sequence(&data))
            .ok()
            .map(|params| String::from(params.to_string()))
        else {
            return;
        };
        event.prevent_default();
        self.pending.set(true);
        crate::live::form_sent(&form);
        let url = self.url;
        wasm_bindgen_futures::spawn_local(async move {
            let answer = post::<O>(url, body).await;
            crate::live::form_answered(&form, answer.is_ok());
            self.value.set(Some(answer));
            self.version.update(|v| *v += 1);
            self.pending.set(false);
        });
    }
}

/// The error a plain post came back with, from this page's address: the post to `path`,
/// or to any server function.
pub(crate) fn error_in_address(path: Option<&str>) -> Option<AppError> {
    #[cfg(feature = "ssr")]
    let encoded = use_context::<leptos::server::ServerActionError>()
        .filter(|error| path.is_none_or(|path| error.path() == path))
        .map(|error| error.err().to_owned());
    #[cfg(feature = "hydrate")]
    let encoded = window()
        .location()
        .search()
        .ok()
        .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
        .filter(|query| path.is_none_or(|path| query.get("__path").as_deref() == Some(path)))
        .and_then(|query| query.get("__err"));
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    let encoded: Option<String> = {
        let _ = path;
        None
    };
    encoded.map(|e| leptos::server_fn::error::ServerFnUrlError::<AppError>::decode_err(&e))
}

/// Posts `body` to `url` and reads the answer: the output, or the error the server
/// function sent. A server function that redirects (a new client's page) is followed.
#[cfg(feature = "hydrate")]
async fn post<O: DeserializeOwned>(url: &str, body: String) -> Result<O, AppError> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let unavailable = |_| AppError::Unavailable;
    let window = window();
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    init.set_body(&body.into());
    let headers = web_sys::Headers::new().map_err(unavailable)?;
    headers
        .set("Content-Type", "application/x-www-form-urlencoded")
        .map_err(unavailable)?;
    headers
        .set("Accept", "application/json")
        .map_err(unavailable)?;
    init.set_headers(&headers);
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(unavailable)?
        .dyn_into()
        .map_err(unavailable)?;
    let text = JsFuture::from(response.text().map_err(unavailable)?)
        .await
        .map_err(unavailable)?
        .as_string()
        .unwrap_or_default();
    if let Ok(Some(_)) = response
        .headers()
        .get(leptos::server_fn::redirect::REDIRECT_HEADER)
        && let Ok(Some(location)) = response.headers().get("Location")
    {
        let _ = window.location().set_href(&location);
    }
    if response.ok() {
        serde_json::from_str(&text).map_err(|_| AppError::Unavailable)
    } else {
        Err(serde_json::from_str(&text).unwrap_or(AppError::Unavailable))
    }
}

/// The `<form>` of a [`FormAction`]: posts in place once the island is interactive, and
/// natively before or without that. Attributes given as `attr:…` land on the form.
#[component]
pub fn PostForm<O>(action: FormAction<O>, children: Children) -> impl IntoView
where
    O: DeserializeOwned + Send + Sync + 'static,
{
    #[cfg(feature = "hydrate")]
    let on_submit = move |event| action.submit(event);
    #[cfg(not(feature = "hydrate"))]
    let on_submit = |_: leptos::ev::SubmitEvent| {};
    view! {
        <form action=action.url() method="post" on:submit=on_submit>
            {children()}
        </form>
    }
}

//! `/api-keys`: the keys programs use to call the REST API (admins). Create one for a role
//! (a stylist key reaches one book), copy its secret once, revoke it when it is no longer
//! needed.

use crate::error::AppError;
use crate::form::{FormAction, PostForm};
use crate::routes::client_form::list_stylists;
use crate::routes::{FormStatus, LoadError, PageStatus, format_instant, refresh_on_success};
use domain::user::ApiKey;
use domain::views::Stylist;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[server]
pub async fn list_api_keys() -> Result<Vec<ApiKey>, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    Ok(service.api_keys(&user).await?)
}

/// A key just made, as the page shows it: its name and its secret, this once.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct CreatedKey {
    pub name: String,
    pub secret: String,
}

/// The secret stays out of logs.
impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("name", &self.name)
            .field("secret", &"…")
            .finish()
    }
}

/// Creates a key; the answer carries the secret, which is shown this once.
#[server]
pub async fn create_api_key(
    name: String,
    role: String,
    #[server(default)] stylist_id: String,
) -> Result<CreatedKey, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    let role = domain::user::Role::parse(&role)
        .map_err(|e| AppError::Invalid(domain::ValidationErrors(vec![e])))?;
    let stylist = Some(stylist_id.trim())
        .filter(|s| !s.is_empty())
        .map(domain::StylistId::new);
    let created = service.create_api_key(&user, name, role, stylist).await?;
    Ok(CreatedKey {
        name: created.key.name,
        secret: created.secret,
    })
}

#[server]
pub async fn revoke_api_key(id: String) -> Result<(), AppError> {
    let (service, user) = crate::service::service_for_user()?;
    let key = service.revoke_api_key(&user, id).await?;
    // A plain post goes back to the list, which says what was revoked.
    crate::routes::redirect_with("/api-keys", &[("revoked", key.name)]);
    Ok(())
}

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let query = use_query_map();
    let keys = Resource::new(|| (), |_| list_api_keys());
    let stylists = Resource::new(|| (), |_| list_stylists());
    let revoked = query
        .read_untracked()
        .get("revoked")
        .map(|name| revoked_message(&name));
    view! {
        <section class="panel">
            <h1>"API keys"</h1>
            <p class="hint">
                "Programs such as the order system call the "<a href="/api/docs">"REST API"</a>
                " with a key. A key acts with its role; a stylist key reaches only that stylist\u{2019}s clients. Only a hash of each secret is kept."
            </p>
            <PageStatus message=revoked/>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let stylists = stylists.await.unwrap_or_default();
                    view! { <CreateKey stylists/> }
                })}
            </Suspense>
            // A new key shows in the list as soon as it is made (crate::live).
            <div id="api-keys-live" data-live="">
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match keys.await {
                        Ok(rows) if rows.is_empty() => view! { <p class="empty">"No API keys yet."</p> }.into_any(),
                        Ok(rows) => view! {
                            <table id="api-keys" tabindex="0">
                                <thead><tr><th scope="col">"Id"</th><th scope="col">"Name"</th><th scope="col">"Role"</th><th scope="col">"Stylist"</th><th scope="col">"Created"</th><th scope="col">"State"</th><th scope="col"></th></tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|key| {
                                        let revoked = key.revoked_at.map(format_instant);
                                        view! {
                                            <tr>
                                                <td><code>{key.id.clone()}</code></td>
                                                <td>{key.name.clone()}</td>
                                                <td>{key.role.as_str()}</td>
                                                <td>{key.stylist_id.map(|s| s.as_str().to_owned()).unwrap_or_else(|| "\u{2014}".to_owned())}</td>
                                                <td>{format_instant(key.created_at)}</td>
                                                <td>{revoked.clone().map_or_else(|| "active".to_owned(), |at| format!("revoked {at}"))}</td>
                                                <td>
                                                    {revoked.is_none().then(|| view! {
                                                        <RevokeKey id=key.id.clone() name=key.name.clone()/>
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(error) => view! { <LoadError error/> }.into_any(),
                    }
                })}
            </Transition>
            </div>
        </section>
    }
}

fn revoked_message(name: &str) -> String {
    format!("Revoked \"{name}\"; it no longer opens the API.")
}

/// Revoking a key: an island, so a secret just shown stays on the page (rotating a key is
/// create, then revoke, then copy).
#[island]
fn RevokeKey(id: String, name: String) -> impl IntoView {
    let revoke = FormAction::new::<RevokeApiKey>();
    refresh_on_success(revoke);
    Effect::new(move |_| match &*revoke.value().read() {
        Some(Ok(())) => crate::live::announce(&revoked_message(&name)),
        Some(Err(error)) => crate::live::announce(&error.to_string()),
        None => {}
    });
    view! {
        <PostForm action=revoke>
            <input type="hidden" name="id" value=id/>
            <button type="submit" class="secondary" disabled=move || revoke.pending().get()>"Revoke"</button>
        </PostForm>
    }
}

/// Creating a key: an island, because the secret is in the answer and shown this once,
/// never put in an address.
#[island]
fn CreateKey(stylists: Vec<Stylist>) -> impl IntoView {
    let create = FormAction::new::<CreateApiKey>();
    refresh_on_success(create);
    let message = Signal::derive(move || match create.value().get() {
        Some(Err(error)) => Some(error.to_string()),
        _ => None,
    });
    let secret = move || {
        create.value().get().and_then(Result::ok).map(|created| {
            view! {
                <div class="notice" id="new-key">
                    <p>"Key \u{201c}"{created.name}"\u{201d} created. Copy its secret now; it is not shown again:"</p>
                    <code id="new-key-secret">{created.secret}</code>
                    <p class="hint">"Send it as "<code>"Authorization: Bearer …"</code>" with every request."</p>
                </div>
            }
        })
    };
    view! {
        <FormStatus message/>
        {secret}
            <PostForm action=create attr:class="inline-form">
                <label>"Name" <input type="text" name="name" required maxlength="100" placeholder="order-system import"/></label>
                <label>"Role"
                    <select name="role">
                        <option value="manager">"Manager (every book, read and write)"</option>
                        <option value="stylist">"Stylist (one book)"</option>
                        <option value="admin">"Admin (also manages keys)"</option>
                    </select>
                </label>
                <label>"Stylist (for a stylist key)"
                    <select name="stylist_id">
                        <option value="">"\u{2014}"</option>
                        {stylists.into_iter().map(|s| view! {
                            <option value=s.id.as_str().to_owned()>{s.name}</option>
                        }).collect_view()}
                    </select>
                </label>
                <button type="submit">"Create key"</button>
            </PostForm>
    }
}

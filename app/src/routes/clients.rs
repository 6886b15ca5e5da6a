//! The clients page: add a client, and see the book of clients with their scores.

use crate::live::use_ticker;
use crate::routes::format_instant;
use domain::views::{ClientSummary, Stylist};
use domain::{ClientId, ValidationErrors};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The answer to a create request: the new client, or the fields that need fixing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateClientOutcome {
    Created {
        id: ClientId,
        name: String,
        /// Whether the client agreed to emails, and so will get a welcome draft.
        emails_allowed: bool,
    },
    Rejected(ValidationErrors),
}

#[server]
pub async fn list_stylists() -> Result<Vec<Stylist>, ServerFnError> {
    use crate::service::{service, to_server_error};
    service()?.list_stylists().await.map_err(to_server_error)
}

#[server]
pub async fn list_clients() -> Result<Vec<ClientSummary>, ServerFnError> {
    use crate::service::{service, to_server_error};
    // The newest page of clients; paging comes with search.
    service()?.list_clients(50).await.map_err(to_server_error)
}

#[server]
pub async fn create_client(
    name: String,
    email: String,
    stylist_id: String,
    /// Present (any value) when the "agreed to emails" box is ticked.
    email_opt_in: Option<String>,
) -> Result<CreateClientOutcome, ServerFnError> {
    use crate::service::{ServiceError, service, to_server_error};
    let input = domain::ClientInput {
        name,
        email,
        stylist_id,
        status: None,
        profile: domain::ProfileInput {
            email_opt_in: email_opt_in.is_some(),
            ..domain::ProfileInput::default()
        },
    };
    match service()?.create_client(input).await {
        Ok(client) => Ok(CreateClientOutcome::Created {
            id: client.id,
            name: client.name.as_str().to_owned(),
            emails_allowed: client.profile.consent().allows_email(),
        }),
        Err(ServiceError::Invalid(errors)) => Ok(CreateClientOutcome::Rejected(errors)),
        Err(error) => Err(to_server_error(error)),
    }
}

/// How each form field is named on screen, so error messages can say which one is wrong.
fn field_label(field: &str) -> &'static str {
    match field {
        "name" => "Name",
        "email" => "Email",
        "stylist_id" => "Stylist",
        _ => "Field",
    }
}

/// The clients page.
#[component]
pub fn ClientsPage() -> impl IntoView {
    let create = ServerAction::<CreateClient>::new();
    let tick = use_ticker(Duration::from_secs(2));
    let clients = Resource::new(
        move || (create.version().get(), tick.get()),
        |_| list_clients(),
    );
    view! {
        <section class="panel">
            <h1>"Clients"</h1>
            <NewClientForm create/>
        </section>
        <section class="panel">
            <ClientList clients/>
        </section>
    }
}

/// The form that adds a client; shows each rejected field's message beside it.
#[component]
fn NewClientForm(create: ServerAction<CreateClient>) -> impl IntoView {
    let stylists = Resource::new(|| (), |_| list_stylists());
    let form = NodeRef::<leptos::html::Form>::new();
    let outcome = create.value();
    let rejected = move || match outcome.get() {
        Some(Ok(CreateClientOutcome::Rejected(errors))) => Some(errors),
        _ => None,
    };
    // Clear the form once the client is stored, ready for the next one.
    Effect::new(move |_| {
        if let Some(Ok(CreateClientOutcome::Created { .. })) = outcome.get()
            && let Some(form) = form.get()
        {
            form.reset();
        }
    });
    let field_error = move |field: &'static str| {
        move || {
            rejected().and_then(|errors| errors.message_for(field).map(str::to_owned)).map(|message| {
                view! {
                    <p class="field-error" id=format!("{field}-error") data-field=field role="alert">
                        {format!("{}: {message}", field_label(field))}
                    </p>
                }
            })
        }
    };
    let invalid = move |field: &'static str| {
        move || {
            rejected()
                .is_some_and(|errors| errors.message_for(field).is_some())
                .to_string()
        }
    };
    view! {
        <ActionForm action=create node_ref=form attr:class="client-form" attr:novalidate=true>
            <div class="field">
                <label for="client-name">"Name"</label>
                <input id="client-name" name="name" type="text" autocomplete="off" maxlength="100" aria-invalid=invalid("name") aria-describedby="name-error"/>
                {field_error("name")}
            </div>
            <div class="field">
                <label for="client-email">"Email"</label>
                <input id="client-email" name="email" type="email" autocomplete="off" aria-invalid=invalid("email") aria-describedby="email-error"/>
                {field_error("email")}
            </div>
            <div class="field">
                <label for="client-stylist">"Stylist"</label>
                <select id="client-stylist" name="stylist_id" aria-invalid=invalid("stylist_id") aria-describedby="stylist_id-error">
                    <Suspense fallback=|| view! { <option value="">"Loading stylists…"</option> }>
                        {move || Suspend::new(async move {
                            let stylists = stylists.await.unwrap_or_default();
                            stylists
                                .into_iter()
                                .map(|s| view! { <option value=s.id.as_str().to_owned()>{s.name}</option> })
                                .collect_view()
                        })}
                    </Suspense>
                </select>
                {field_error("stylist_id")}
            </div>
            <div class="field checkbox">
                <input id="client-opt-in" name="email_opt_in" type="checkbox" value="yes"/>
                <label for="client-opt-in">"Agreed to receive emails"</label>
            </div>
            <button type="submit" disabled=move || create.pending().get()>"Add client"</button>
        </ActionForm>
        <p class="form-status" role="status">
            {move || match outcome.get() {
                Some(Ok(CreateClientOutcome::Created { name, emails_allowed: true, .. })) => format!("Added {name}. Their welcome draft is on its way."),
                Some(Ok(CreateClientOutcome::Created { name, emails_allowed: false, .. })) => format!("Added {name}. No emails will be drafted until they agree to receive them."),
                Some(Ok(CreateClientOutcome::Rejected(errors))) => {
                    let fields: Vec<_> = errors.0.iter().map(|e| field_label(&e.field)).collect();
                    format!("Nothing was saved. Please check: {}.", fields.join(", "))
                }
                Some(Err(error)) => format!("Nothing was saved. {error}"),
                None => String::new(),
            }}
        </p>
    }
}

/// The newest clients, with a quick filter that works in the browser.
#[component]
fn ClientList(clients: Resource<Result<Vec<ClientSummary>, ServerFnError>>) -> impl IntoView {
    let filter = RwSignal::new(String::new());
    view! {
        <div class="list-header">
            <h2>"Newest clients"</h2>
            <input
                class="filter"
                type="search"
                placeholder="Filter by name or email"
                aria-label="Filter clients"
                prop:value=move || filter.get()
                on:input=move |ev| filter.set(event_target_value(&ev))
            />
        </div>
        <Transition fallback=|| view! { <p>"Loading clients…"</p> }>
            {move || Suspend::new(async move {
                match clients.await {
                    Ok(rows) => view! { <ClientTable rows filter/> }.into_any(),
                    Err(_) => view! { <p class="error">"The client list could not be loaded. Please reload the page."</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ClientTable(rows: Vec<ClientSummary>, filter: RwSignal<String>) -> impl IntoView {
    let visible = move || {
        let needle = filter.get().to_lowercase();
        rows.iter()
            .filter(|c| {
                needle.is_empty()
                    || c.name.to_lowercase().contains(&needle)
                    || c.email.contains(&needle)
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    view! {
        <table class="clients">
            <thead>
                <tr><th>"Name"</th><th>"Email"</th><th>"Stylist"</th><th>"Score"</th><th>"Added"</th></tr>
            </thead>
            <tbody>
                <For each=visible key=|c| (c.id.clone(), c.score) let:client>
                    <tr data-client-id=client.id.as_str().to_owned()>
                        <td>{client.name}</td>
                        <td>{client.email}</td>
                        <td>{client.stylist_name}</td>
                        <td>
                            {match (client.score, client.band) {
                                (Some(score), Some(band)) => view! { <span class=format!("band band-{}", band.as_str())>{score}" · "{band.label()}</span> }.into_any(),
                                _ => view! { <span class="band band-pending">"Scoring…"</span> }.into_any(),
                            }}
                        </td>
                        <td>{format_instant(client.created_at)}</td>
                    </tr>
                </For>
            </tbody>
        </table>
    }
}

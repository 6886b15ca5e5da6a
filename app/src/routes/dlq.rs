//! `/dlq`: events that failed too often, with their last error, and putting them back on
//! the queue once the fault is fixed (managers and admins).

use crate::error::AppError;
use crate::routes::{FormStatus, LoadError, format_instant};
use domain::dashboard::DeadLetterView;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[server]
pub async fn list_dead_letters() -> Result<Vec<DeadLetterView>, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    Ok(service.dead_letters(&user).await?)
}

/// Puts one dead letter (or, with an empty id, all) back on the queue.
#[server]
pub async fn redrive(#[server(default)] id: String) -> Result<u64, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    let id = match id.trim() {
        "" => None,
        raw => Some(raw.parse().map_err(|_| {
            AppError::Invalid(domain::ValidationErrors::single(
                "id",
                "Not a dead letter's id.",
            ))
        })?),
    };
    let moved = service.redrive(&user, id).await?;
    // The forms are plain posts: back to the list, which says what was put back.
    crate::routes::redirect_with("/dlq", &[("requeued", moved.to_string())]);
    Ok(moved)
}

#[component]
pub fn DeadLettersPage() -> impl IntoView {
    let query = use_query_map();
    let redrive = ServerAction::<Redrive>::new();
    let letters = Resource::new(|| (), |_| list_dead_letters());
    let message = Signal::derive(move || match redrive.value().get() {
        Some(Err(error)) => Some(error.to_string()),
        _ => match query.read().get("requeued")?.parse::<u64>().ok()? {
            0 => Some("Nothing to put back.".to_owned()),
            n => Some(format!(
                "{n} back on the queue; each still takes effect at most once."
            )),
        },
    });
    view! {
        <section class="panel">
            <h1>"Dead letters"</h1>
            <p class="hint">"Events that failed too often, with their last error. Fix the cause, then put them back on the queue."</p>
            <FormStatus message/>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match letters.await {
                        Ok(rows) if rows.is_empty() => view! { <p class="empty">"No dead letters."</p> }.into_any(),
                        Ok(rows) => view! {
                            <ActionForm action=redrive>
                                <input type="hidden" name="id" value=""/>
                                <button type="submit">"Put all back on the queue"</button>
                            </ActionForm>
                            <table tabindex="0">
                                <thead><tr><th scope="col">"Id"</th><th scope="col">"Event"</th><th scope="col">"Receives"</th><th scope="col">"Last error"</th><th scope="col">"Failed"</th><th scope="col"></th></tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|d| view! {
                                        <tr>
                                            <td>{d.id}</td><td>{d.event_id}</td><td>{d.receive_count}</td>
                                            <td>{d.last_error}</td><td>{format_instant(d.failed_at)}</td>
                                            <td>
                                                <ActionForm action=redrive>
                                                    <input type="hidden" name="id" value=d.id.to_string()/>
                                                    <button type="submit" class="secondary">"Put back"</button>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(error) => view! { <LoadError error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

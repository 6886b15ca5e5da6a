//! The `Records` contract on the embedded SQLite store (the DynamoDB store runs the same
//! suite in `engage-aws`'s tests).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_the_records_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path().join("engage.db")).unwrap();
    ports::contract::run(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_the_accounts_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path().join("engage.db")).unwrap();
    ports::contract::run_accounts(&store, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_the_books_and_review_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path().join("engage.db")).unwrap();
    ports::contract::run_books_and_review(&store, &store, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_the_model_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path().join("engage.db")).unwrap();
    ports::contract::run_model(&store, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_the_decisions_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path().join("engage.db")).unwrap();
    ports::contract::run_decisions(&store, &store).await;
}

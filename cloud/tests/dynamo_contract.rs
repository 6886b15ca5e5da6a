//! The `Records` contract (the suite the SQLite store passes too) on DynamoDB, against a
//! moto_server the test starts.

use engage_aws::bootstrap::{QueueSettings, bootstrap};
use engage_aws::{Aws, moto::Moto};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_keeps_the_records_contract() {
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "contract").await;
    bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .expect("bootstrap");
    ports::contract::run(&aws.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_keeps_the_accounts_contract() {
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "accounts").await;
    bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .expect("bootstrap");
    let store = aws.store();
    ports::contract::run_accounts(&store, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_keeps_the_books_and_review_contract() {
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "books").await;
    let resources = bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .expect("bootstrap");
    let store = aws.store();
    let events = engage_aws::stream::StreamHandler::new(aws.sns.clone(), resources.topic_arn);
    let review = engage_aws::DynamoReview::new(store.clone(), events);
    ports::contract::run_books_and_review(&store, &store, &review).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_keeps_the_model_contract() {
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "model").await;
    bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .expect("bootstrap");
    let store = aws.store();
    ports::contract::run_model(&store, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_keeps_the_decisions_contract() {
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "decisions").await;
    let resources = bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .expect("bootstrap");
    let store = aws.store();
    let events = engage_aws::stream::StreamHandler::new(aws.sns.clone(), resources.topic_arn);
    let review = engage_aws::DynamoReview::new(store.clone(), events);
    ports::contract::run_decisions(&store, &review).await;
}

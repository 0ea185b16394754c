#[tokio::test]
async fn compiles() {
    let c = fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    let _ = c;
}

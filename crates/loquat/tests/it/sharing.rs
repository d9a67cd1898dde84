//! Sharing a topic by link: readable with no session, only the branch as shared, hostile text
//! inert, revocable, off when the administrator says so, and the same "not found" for every
//! link that does not open.

use loquat_test_support::fake_openai::Reply;

use crate::helpers::TestApp;

/// Creates a link to `topic` through the form; the link.
async fn share(app: &TestApp, client: &reqwest::Client, topic: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = client.post(app.url(&format!("/topics/{topic}/shares"))).form(form).send().await.expect("POST");
    let status = response.status().as_u16();
    let page = response.text().await.expect("page");
    let link =
        page.split("data-copy=\"").nth(1).and_then(|rest| rest.split('"').next()).map(str::to_owned).unwrap_or(page);
    (status, link)
}

/// GET with no session at all.
async fn stranger(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn a_shared_link_shows_the_branch_as_shared_to_anyone_and_nothing_else() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("Loquats are sweet. <script>alert('x')</script><img src=x onerror=alert(2)>"));
    app.fake.push_reply(Reply::text("Loquat facts"));
    let sent = app.send(assistant, None, "Tell me about loquats").await;
    app.finished(sent.answer).await;
    app.titled(sent.topic).await;
    app.fake.push_reply(Reply::text("Private other topic"));
    let other = app.send(assistant, None, "A secret elsewhere").await;
    app.finished(other.answer).await;
    let topic = sent.topic.to_string();
    let (status, link) = share(&app, &app.client, &topic, &[("days", ""), ("show_name", "")]).await;
    assert_eq!(status, 200);
    assert!(link.starts_with(&app.url("/share/")), "{link}");
    assert!(link.len() > app.url("/share/").len() + 40, "an unguessable secret: {link}");
    // Later messages are not shared.
    app.fake.push_reply(Reply::text("Said after sharing"));
    let later = app.send(assistant, Some(sent.topic), "And later?").await;
    app.finished(later.answer).await;
    let response = reqwest::get(&link).await.expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert!(response.headers()["x-robots-tag"].to_str().expect("ascii").contains("noindex"));
    let page = response.text().await.expect("page");
    assert!(
        page.contains("Loquat facts") && page.contains("Tell me about loquats") && page.contains("Loquats are sweet.")
    );
    assert!(!page.contains("And later?") && !page.contains("Said after sharing"), "only the branch as shared");
    assert!(!page.contains("<script>alert") && !page.contains("<img src=x"), "sanitized: {page}");
    assert!(!page.contains("A secret elsewhere") && !page.contains("Ada Admin"), "nothing else: {page}");
    assert!(!page.contains("<textarea") && !page.contains("/send"), "no composer");
    // With the owner's name, when chosen.
    let (_, named) = share(&app, &app.client, &topic, &[("days", "7"), ("show_name", "on")]).await;
    let (_, page) = stranger(&named).await;
    assert!(page.contains("Shared by Ada Admin"), "{page}");
    // Someone else can neither list nor revoke them.
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    let (status, _) = app.page_as(&bob, &format!("/topics/{topic}/shares")).await;
    assert_eq!(status, 404);
    let (_, list) = app.page(&format!("/topics/{topic}/shares")).await;
    let share_id =
        list.split(&format!("/topics/{topic}/shares/")).nth(1).expect("a link").split('/').next().expect("id");
    let revoke = format!("/topics/{topic}/shares/{share_id}/revoke");
    let refused = bob.post(app.url(&revoke)).form(&[("x", "")]).send().await.expect("POST");
    assert_eq!(refused.status().as_u16(), 404);
    // Revoked, missing and malformed links are the same "not found".
    assert_eq!(app.post_redirect(&revoke, &[]).await, format!("/topics/{topic}/shares"));
    let (status, revoked) = stranger(&named).await;
    assert_eq!(status, 404);
    let (status, missing) = stranger(&app.url("/share/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).await;
    assert_eq!(status, 404);
    assert_eq!(revoked, missing, "a revoked link looks like one that never was");
    let (status, _) = stranger(&app.url(&format!("/share/{}", "x".repeat(5_000)))).await;
    assert_eq!(status, 404);
    // Sharing turned off: links stop opening and none can be made; on again, they open.
    let admin_settings = app.post_redirect("/admin/settings/sharing", &[]).await;
    assert_eq!(admin_settings, "/admin/settings");
    assert_eq!(stranger(&link).await.0, 404);
    let refused = app.post_form(&format!("/topics/{topic}/shares"), &[("days", "")]).await;
    assert_eq!(refused.status().as_u16(), 422);
    let page = refused.text().await.expect("page");
    assert!(page.contains("turned sharing off"), "{page}");
    app.post_redirect("/admin/settings/sharing", &[("enabled", "on")]).await;
    assert_eq!(stranger(&link).await.0, 200);
    // A member cannot switch it.
    let refused = bob.post(app.url("/admin/settings/sharing")).form(&[("x", "")]).send().await.expect("POST");
    assert_eq!(refused.status().as_u16(), 404);
    // Deleting the topic ends its links.
    app.post_redirect(&format!("/topics/{topic}/delete"), &[]).await;
    assert_eq!(stranger(&link).await.0, 404);
    app.cleanup().await;
}

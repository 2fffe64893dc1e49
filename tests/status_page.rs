//! The status page (`GET /` on the admin port) over a real importer: its
//! guard, its rows, its escaping, and how headless Chromium renders it
//! (skipped, with a message, where no `chromium` is installed).
//!
//! `SIS_TEST_SCREENSHOT=docs/status-page.png cargo test --test status_page`
//! also writes the Chromium test's screenshot there: the one the operating
//! guide shows.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use sis_importer::shutdown::Shutdown;

const TOKEN: &str = "page-tok-7313";

/// A daemon over `ids` with its admin API on a free port, guarded by
/// [`TOKEN`].
type Page = AdminApi;

impl Page {
    /// `GET path` with `token` as the `token` header: status, content type
    /// and body.
    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, String, String) {
        let mut req = self.http.get(format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            req = req.header("token", token);
        }
        let answer = req.send().await.expect("the admin API answers");
        let status = answer.status();
        let kind = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, kind, answer.text().await.unwrap_or_default())
    }
}

/// The `<tr>` of `id` in the table with HTML id `table`.
fn row<'a>(html: &'a str, table: &str, id: &str) -> Option<&'a str> {
    let start = html.find(&format!("<table id=\"{table}\""))?;
    let html = &html[start..html[start..].find("</table>")? + start];
    let at = html.find(&format!("<tr data-service=\"{id}\">"))?;
    Some(&html[at..at + html[at..].find("</tr>")?])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_guarded_like_status_and_shows_each_services_row() {
    let page = Page::start(40, &["PERSON", "COURSE_UNIT", "COUNTRY"], Some(TOKEN)).await;
    page.env.fake.faults().forbid("COURSE_UNIT");
    page.env.fake.faults().poison("PERSON", 3);
    let summary = page
        .importer
        .run(&services(&["PERSON", "COURSE_UNIT"]), Shutdown::never())
        .await
        .unwrap();
    assert!(!summary.success, "COURSE_UNIT is forbidden");

    for token in [None, Some("wrong")] {
        let (code, _, body) = page.get("/", token).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(!body.contains("PERSON"), "{body}");
    }
    let (code, kind, html) = page.get("/", Some(TOKEN)).await;
    assert_eq!(code, StatusCode::OK, "{html}");
    assert_eq!(kind, "text/html; charset=utf-8");
    let (code, _, by_query) = page.get(&format!("/?token={TOKEN}"), None).await;
    assert_eq!(
        code,
        StatusCode::OK,
        "a browser sends the token in the query"
    );
    assert!(by_query.contains("<tr data-service=\"PERSON\">"));
    assert!(!html.contains(TOKEN), "the token is never in the page");
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"5\">"));

    let person = row(&html, "services", "PERSON").expect("PERSON's row");
    let ordinal = page.env.fake.greatest_ordinal("PERSON").unwrap();
    assert!(person.contains(&format!(">{ordinal}</td>")), "{person}");
    assert!(person.contains(">ok</td>"), "{person}");
    assert!(
        person.contains("class=\"num bad\">1</td>"),
        "one dead letter: {person}"
    );
    let forbidden = row(&html, "services", "COURSE_UNIT").expect("COURSE_UNIT's row");
    assert!(forbidden.contains(">forbidden</td>"), "{forbidden}");
    assert!(forbidden.contains(">yes</td>"), "{forbidden}");
    let never = row(&html, "services", "COUNTRY").expect("a row also for a service never run");
    assert!(never.contains("<td class=\"\">-</td>"), "{never}");

    assert!(
        row(&html, "progress", "PERSON").is_some_and(|r| r.contains(">ok</td>")),
        "this process's last run: {html}"
    );
    assert!(
        html.contains("<h2>Forbidden</h2><span class=\"bad\">COURSE_UNIT</span>"),
        "{html}"
    );
    assert!(
        html.contains("<h2>Dead letters</h2><span class=\"bad\">1</span>: PERSON 1"),
        "{html}"
    );
    assert!(html.contains("1 forbidden"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_in_an_error_message_is_shown_as_text() {
    let page = Page::start(5, &["PERSON"], Some(TOKEN)).await;
    // An error message is text from elsewhere (Sisu, NATS, Redis): store
    // a hostile one as the run's record, as the importer would.
    let record = serde_json::json!({
        "started": "2026-11-28T02:00:00+00:00",
        "duration_ms": 1200,
        "result": "failed",
        "error": "Sisu said <script>alert(\"owned\")</script> & left",
        "entities": 0,
    });
    let client = redis::Client::open(page.env.redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("SIS_IMPORTER:STATUS:PERSON")
        .arg(record.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();

    let (code, _, html) = page.get("/", Some(TOKEN)).await;
    assert_eq!(code, StatusCode::OK, "{html}");
    assert!(!html.contains("<script"), "{html}");
    let at = html
        .find("<tr class=\"err-row\" data-error=\"PERSON\">")
        .expect("PERSON's error line");
    let line = &html[at..at + html[at..].find("</tr>").unwrap()];
    assert!(
        line.contains(
            ">Sisu said &lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; &amp; left</td>"
        ),
        "{line}"
    );
}

/// Chromium's binary, if one is on `PATH`.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Runs headless Chromium on `url` with `args`; its stdout.
async fn headless(
    chromium: &PathBuf,
    profile: &std::path::Path,
    args: &[&str],
    url: &str,
) -> String {
    let run = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("chromium finishes within 90 s")
        .expect("chromium starts");
    assert!(output.status.success(), "chromium: {:?}", output.status);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_renders_the_tables_while_a_run_is_under_way() {
    let Some(chromium) = chromium() else {
        eprintln!(
            "skipped: no chromium or chromium-browser on PATH (Debian: apt-get install chromium)"
        );
        return;
    };
    let ids = [
        "PERSON",
        "ORGANISATION",
        "COURSE_UNIT",
        "STUDY_RIGHT",
        "ATTAINMENT",
        "COUNTRY",
        "PLAN",
    ];
    let page = Page::start(1000, &ids, Some(TOKEN)).await;
    let faults = page.env.fake.faults();
    faults.poison("ATTAINMENT", 3);
    faults.poison("ATTAINMENT", 17);
    faults.forbid("COURSE_UNIT");
    faults.fail_next("PLAN", 404, 1000);
    // A first run without STUDY_RIGHT, then a forced one in which it
    // imports slowly: the page shows both runs and the live progress.
    let first: Vec<&str> = ids.into_iter().filter(|id| *id != "STUDY_RIGHT").collect();
    page.importer
        .run(&services(&first), Shutdown::never())
        .await
        .unwrap();
    faults.latency(Some("STUDY_RIGHT"), Duration::from_millis(700));
    let forced = page
        .http
        .post(format!("http://{}/force_update", page.addr))
        .header("token", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), StatusCode::ACCEPTED);
    let importer = page.importer.clone();
    assert!(
        eventually(Duration::from_secs(30), || importer
            .live()
            .get("STUDY_RIGHT")
            .is_some_and(|p| p.entities >= 100))
        .await,
        "STUDY_RIGHT imports"
    );

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{}/?token={TOKEN}", page.addr);
    let dom = headless(&chromium, profile.path(), &["--dump-dom"], &url).await;
    for id in ids {
        assert!(
            row(&dom, "services", id).is_some(),
            "{id} has a row in the rendered table: {dom}"
        );
    }
    assert!(
        row(&dom, "progress", "STUDY_RIGHT").is_some_and(|r| r.contains(">importing</td>")),
        "the live progress shows the service under way: {dom}"
    );
    assert!(
        row(&dom, "services", "PLAN").is_some_and(|r| r.contains(">failed</td>")),
        "{dom}"
    );
    assert!(
        dom.contains("under way</span> (import lease held by test"),
        "{dom}"
    );

    let shot = profile.path().join("status-page.png");
    let arg = format!("--screenshot={}", shot.display());
    headless(
        &chromium,
        profile.path(),
        &[&arg, "--window-size=1280,900"],
        &url,
    )
    .await;
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if let Some(to) = std::env::var_os("SIS_TEST_SCREENSHOT") {
        std::fs::write(&to, &png).unwrap();
        eprintln!("screenshot: {} ({} bytes)", to.to_string_lossy(), png.len());
    }

    faults.latency(Some("STUDY_RIGHT"), Duration::ZERO);
    let importer = page.importer.clone();
    assert!(
        eventually(Duration::from_secs(30), || !importer.is_running()).await,
        "the forced run ends"
    );
}

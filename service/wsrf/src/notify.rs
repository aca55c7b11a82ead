//! WS-BaseNotification messages vcds sends to consumers.

use chrono::{DateTime, Utc};
use vcds_soap::ns;
use vcds_xml::{escape, QName};

use crate::epr::Epr;

/// One `wsnt:NotificationMessage` around `message` (serialized), for the Notify body.
pub fn notification_message(
    subscription: &Epr,
    topic: &QName,
    producer: &Epr,
    message: &str,
) -> String {
    format!(
        concat!(
            "<wsnt:Notify xmlns:wsnt=\"{wsnt}\" xmlns:wsa=\"{wsa}\"><wsnt:NotificationMessage>",
            "<wsnt:SubscriptionReference>{sub}</wsnt:SubscriptionReference>",
            "<wsnt:Topic Dialect=\"{dialect}\" xmlns:tp=\"{tns}\">tp:{tlocal}</wsnt:Topic>",
            "<wsnt:ProducerReference>{producer}</wsnt:ProducerReference>",
            "<wsnt:Message>{message}</wsnt:Message></wsnt:NotificationMessage></wsnt:Notify>"
        ),
        wsnt = ns::WSNT,
        wsa = ns::WSA,
        sub = subscription.children(),
        dialect = crate::topic::SIMPLE,
        tns = escape(&topic.ns),
        tlocal = escape(&topic.local),
        producer = producer.children(),
        message = message,
    )
}

/// `wsrf-rp:ResourcePropertyValueChangeNotification` with the old and new values.
pub fn value_change(old: &[String], new: &[String]) -> String {
    let mut out = format!(
        "<rp:ResourcePropertyValueChangeNotification xmlns:rp=\"{}\">",
        ns::WSRF_RP
    );
    if !old.is_empty() {
        out.push_str("<rp:OldValues>");
        old.iter().for_each(|v| out.push_str(v));
        out.push_str("</rp:OldValues>");
    }
    out.push_str("<rp:NewValues>");
    new.iter().for_each(|v| out.push_str(v));
    out.push_str("</rp:NewValues></rp:ResourcePropertyValueChangeNotification>");
    out
}

/// `wsrf-rl:TerminationNotification`.
pub fn termination(time: DateTime<Utc>, reason: &str) -> String {
    format!(
        "<rl:TerminationNotification xmlns:rl=\"{}\"><rl:TerminationTime>{}</rl:TerminationTime><rl:TerminationReason>{}</rl:TerminationReason></rl:TerminationNotification>",
        ns::WSRF_RL,
        crate::xsd_datetime(time),
        escape(reason)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_is_well_formed_and_carries_the_topic() {
        let epr = Epr::new("http://127.0.0.1:1/x");
        let body = notification_message(
            &epr,
            &QName::new("urn:t", "State"),
            &epr,
            &value_change(&[], &["<a/>".to_string()]),
        );
        let doc = vcds_xml::parse(&body, &vcds_xml::Limits::default()).unwrap();
        let topic = doc
            .descendants()
            .find(|n| n.has_tag_name((ns::WSNT, "Topic")))
            .unwrap();
        assert_eq!(
            QName::resolve_in(topic.text().unwrap(), topic),
            Some(QName::new("urn:t", "State"))
        );
        assert!(doc
            .descendants()
            .any(|n| n.has_tag_name((ns::WSRF_RP, "NewValues"))));
        assert!(!doc
            .descendants()
            .any(|n| n.has_tag_name((ns::WSRF_RP, "OldValues"))));
        assert!(vcds_xml::parse(
            &termination(Utc::now(), "a<b"),
            &vcds_xml::Limits::default()
        )
        .is_ok());
    }
}

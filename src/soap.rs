//! SOAP 1.1 and 1.2 envelopes and faults. The version is data: packs and profiles choose it.

use crate::xml::Element;

pub const SOAP11_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12_ENV: &str = "http://www.w3.org/2003/05/soap-envelope";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapVersion {
    V11,
    V12,
}

impl SoapVersion {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "1.1" => Some(Self::V11),
            "1.2" => Some(Self::V12),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::V11 => "1.1",
            Self::V12 => "1.2",
        }
    }
    pub fn env_ns(self) -> &'static str {
        match self {
            Self::V11 => SOAP11_ENV,
            Self::V12 => SOAP12_ENV,
        }
    }
    /// HTTP headers for a request carrying `action`.
    pub fn request_headers(self, action: &str) -> Vec<(String, String)> {
        match self {
            Self::V11 => vec![
                ("Content-Type".into(), "text/xml; charset=utf-8".into()),
                ("SOAPAction".into(), format!("\"{action}\"")),
            ],
            Self::V12 => vec![(
                "Content-Type".into(),
                format!("application/soap+xml; charset=utf-8; action=\"{action}\""),
            )],
        }
    }
    /// Content type of a response.
    pub fn response_content_type(self) -> &'static str {
        match self {
            Self::V11 => "text/xml; charset=utf-8",
            Self::V12 => "application/soap+xml; charset=utf-8",
        }
    }
}

/// Wrap body content (already serialized XML, namespace declarations included or inherited
/// from `extra_ns`) in an envelope. `extra_ns` are `(prefix, uri)` declared on the envelope.
pub fn envelope(env_ns: &str, extra_ns: &[(&str, &str)], body: &str) -> String {
    let mut decls = format!("xmlns:env=\"{env_ns}\"");
    for (p, u) in extra_ns {
        decls.push_str(&format!(" xmlns:{p}=\"{}\"", escape(u)));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<env:Envelope {decls}>\n<env:Body>\n{body}\n</env:Body>\n</env:Envelope>\n"
    )
}

/// A SOAP 1.2 fault body. `code` and `subcode` are `(namespace, local)` pairs.
pub fn fault12(env_ns: &str, code: &str, subcode: Option<(&str, &str)>, reason: &str) -> String {
    let sub = match subcode {
        Some((ns, local)) => format!(
            "<env:Subcode><env:Value xmlns:sc=\"{}\">sc:{local}</env:Value></env:Subcode>",
            escape(ns)
        ),
        None => String::new(),
    };
    envelope(
        env_ns,
        &[],
        &format!(
            "<env:Fault><env:Code><env:Value>env:{code}</env:Value>{sub}</env:Code><env:Reason><env:Text xml:lang=\"fr\">{}</env:Text></env:Reason></env:Fault>",
            escape(reason)
        ),
    )
}

/// A SOAP 1.1 fault body (`faultcode` in the envelope namespace: `Client`, `Server`).
pub fn fault11(code: &str, reason: &str) -> String {
    envelope(
        SOAP11_ENV,
        &[],
        &format!(
            "<env:Fault><faultcode>env:{code}</faultcode><faultstring>{}</faultstring></env:Fault>",
            escape(reason)
        ),
    )
}

/// The fault found in a parsed envelope: code and subcode as `(namespace URI, local name)`
/// resolved from their QName values, and the reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: Option<(String, String)>,
    pub subcode: Option<(String, String)>,
    pub reason: String,
}

/// Find a SOAP 1.1 or 1.2 fault in `envelope` (root element). QName values are resolved with
/// the in-scope namespace declarations recorded by the parser (`Element::ns_decls`).
pub fn find_fault(root: &Element) -> Option<Fault> {
    let body = root.elements().find(|e| e.local == "Body")?;
    let fault = body.elements().find(|e| e.local == "Fault")?;
    let ns = fault.ns.as_deref();
    if ns == Some(SOAP12_ENV) {
        let code_el = fault.elements().find(|e| e.local == "Code");
        let value = code_el.and_then(|c| c.elements().find(|e| e.local == "Value"));
        let sub_value = code_el
            .and_then(|c| c.elements().find(|e| e.local == "Subcode"))
            .and_then(|s| s.elements().find(|e| e.local == "Value"));
        let reason = fault
            .elements()
            .find(|e| e.local == "Reason")
            .and_then(|r| r.elements().find(|e| e.local == "Text"))
            .map(|t| t.text())
            .unwrap_or_default();
        Some(Fault {
            code: value.and_then(|v| v.resolve_qname(&v.text())),
            subcode: sub_value.and_then(|v| v.resolve_qname(&v.text())),
            reason,
        })
    } else {
        let code = fault.elements().find(|e| e.local == "faultcode");
        let reason = fault
            .elements()
            .find(|e| e.local == "faultstring")
            .map(|t| t.text())
            .unwrap_or_default();
        Some(Fault {
            code: code.and_then(|v| v.resolve_qname(&v.text())),
            subcode: None,
            reason,
        })
    }
}

/// Escape text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_and_headers_follow_the_version() {
        for v in [SoapVersion::V11, SoapVersion::V12] {
            let doc = envelope(v.env_ns(), &[("roc", "urn:x")], "<roc:a>1</roc:a>");
            let root = crate::xml::parse(&doc).unwrap();
            assert_eq!(root.ns.as_deref(), Some(v.env_ns()));
            assert_eq!(root.local, "Envelope");
            let body = root.elements().next().unwrap();
            assert_eq!(body.elements().next().unwrap().ns.as_deref(), Some("urn:x"));
        }
        let h = SoapVersion::V11.request_headers("urn:a:IDB");
        assert!(h.contains(&("SOAPAction".into(), "\"urn:a:IDB\"".into())));
        assert!(h[0].1.starts_with("text/xml"));
        let h = SoapVersion::V12.request_headers("urn:a:IDB");
        assert_eq!(h.len(), 1);
        assert!(
            h[0].1.starts_with("application/soap+xml") && h[0].1.contains("action=\"urn:a:IDB\"")
        );
    }

    #[test]
    fn faults_are_found_with_resolved_codes() {
        let doc = fault12(
            SOAP12_ENV,
            "Sender",
            Some(("urn:roc:model:sel", "SchemaInvalide")),
            "élément <x> absent",
        );
        let f = find_fault(&crate::xml::parse(&doc).unwrap()).unwrap();
        assert_eq!(f.code, Some((SOAP12_ENV.into(), "Sender".into())));
        assert_eq!(
            f.subcode,
            Some(("urn:roc:model:sel".into(), "SchemaInvalide".into()))
        );
        assert_eq!(f.reason, "élément <x> absent");
        let doc11 = format!(
            "<s:Envelope xmlns:s=\"{SOAP11_ENV}\"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>no</faultstring></s:Fault></s:Body></s:Envelope>"
        );
        let f = find_fault(&crate::xml::parse(&doc11).unwrap()).unwrap();
        assert_eq!(f.code, Some((SOAP11_ENV.into(), "Client".into())));
        assert_eq!(f.reason, "no");
        let ok = envelope(SOAP12_ENV, &[], "<a/>");
        assert!(find_fault(&crate::xml::parse(&ok).unwrap()).is_none());
    }
}

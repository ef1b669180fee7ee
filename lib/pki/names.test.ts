import { describe, expect, it } from "vitest";
import { parseSubjectAltName, parseSubjectAltNames, splitNameList } from "./names";

function messageFor(input: string): string {
  const result = parseSubjectAltName(input);
  if (result.ok) throw new Error(`expected ${JSON.stringify(input)} to be refused, got ${JSON.stringify(result.entry)}`);
  return result.message;
}

describe("parseSubjectAltName accepts", () => {
  it.each([
    ["example.com", { type: "dns", value: "example.com" }],
    ["  Example.COM.  ", { type: "dns", value: "example.com" }],
    ["*.example.com", { type: "dns", value: "*.example.com" }],
    ["localhost", { type: "dns", value: "localhost" }],
    ["xn--bcher-kva.example", { type: "dns", value: "xn--bcher-kva.example" }],
    ["Bücher.example", { type: "dns", value: "xn--bcher-kva.example" }],
    ["*.Bücher.example", { type: "dns", value: "*.xn--bcher-kva.example" }],
    ["a-b.c0.example", { type: "dns", value: "a-b.c0.example" }],
    ["192.0.2.1", { type: "ip", value: "192.0.2.1" }],
    ["2001:DB8::1", { type: "ip", value: "2001:db8::1" }],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", { type: "ip", value: "2001:db8::1" }],
    ["[::1]", { type: "ip", value: "::1" }],
  ])("%j", (input, entry) => {
    expect(parseSubjectAltName(input)).toEqual({ ok: true, entry });
  });

  it("a name of exactly 253 characters with 63-character labels", () => {
    const name = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
    expect(name).toHaveLength(253);
    expect(parseSubjectAltName(name)).toEqual({ ok: true, entry: { type: "dns", value: name } });
  });
});

describe("parseSubjectAltName refuses", () => {
  it("a space, naming it and the allowed characters", () => {
    expect(messageFor("exa mple.com")).toBe(
      '"exa mple.com" contains a space; a DNS name may only contain letters, digits, hyphens and dots',
    );
  });

  it("an underscore", () => {
    expect(messageFor("_acme.example.com")).toBe(
      '"_acme.example.com" contains "_"; a DNS name may only contain letters, digits, hyphens and dots',
    );
  });

  it.each(["*.*.example.com", "foo*.example.com", "a.*.example.com", "*foo.example.com"])(
    "a wildcard that is not the whole left-most label: %j",
    (input) => {
      expect(messageFor(input)).toBe(`"${input}": a wildcard may only be the whole left-most label, as in *.example.com`);
    },
  );

  it("a wildcard directly over a top-level domain", () => {
    expect(messageFor("*.com")).toBe('"*.com": a wildcard needs at least two labels after it, as in *.example.com');
  });

  it("a 64-character label", () => {
    expect(messageFor(`${"a".repeat(64)}.example.com`)).toBe(
      'label "aaaaaaaaaaaaaaaa…" is 64 characters long; each label between dots may be at most 63',
    );
  });

  it("a 254-character name, even when every label is short enough", () => {
    const name = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)].join(".");
    expect(name).toHaveLength(254);
    expect(messageFor(name)).toBe("name is 254 characters long; a DNS name may be at most 253");
    expect(messageFor(`${name}.`)).toBe("name is 254 characters long; a DNS name may be at most 253");
  });

  it.each(["-x.com", "x-.com", "a.-b.com"])("a label starting or ending with a hyphen: %j", (input) => {
    expect(messageFor(input)).toBe(`"${input}": a label may not start or end with a hyphen`);
  });

  it.each(["a..example.com", ".example.com"])("an empty label: %j", (input) => {
    expect(messageFor(input)).toMatch(/has an empty label; remove the extra dot/);
  });

  it.each(["", "   "])("an empty name: %j", (input) => {
    expect(messageFor(input)).toMatch(/^name is empty;/);
  });

  it("something that looks like a mistyped IPv4 address", () => {
    expect(messageFor("192.0.2.256")).toMatch(/neither a valid IP address nor a DNS name/);
  });

  it("an IPv6 address with a zone index", () => {
    expect(messageFor("fe80::1%eth0")).toMatch(/has a zone index/);
  });

  it("a URL and a host with a port, saying what to enter instead", () => {
    expect(messageFor("https://example.com/")).toBe('"https://example.com/" is a URL; enter only the host name, as in example.com');
    expect(messageFor("example.com:443")).toBe('"example.com:443" includes a port; enter the name without ":443"');
  });

  it("an internationalised name that cannot be converted", () => {
    expect(messageFor("bü%cher.example")).toMatch(/is not a valid internationalised domain name/);
  });
});

describe("parseSubjectAltNames", () => {
  it("returns normalised entries in the order given", () => {
    expect(parseSubjectAltNames(["Example.com", "*.example.com", "2001:DB8::1"])).toEqual({
      ok: true,
      entries: [
        { type: "dns", value: "example.com" },
        { type: "dns", value: "*.example.com" },
        { type: "ip", value: "2001:db8::1" },
      ],
    });
  });

  it("refuses an empty list", () => {
    expect(parseSubjectAltNames([])).toEqual({ ok: false, errors: ["add at least one name"] });
  });

  it("refuses more than 100 names", () => {
    const names = Array.from({ length: 101 }, (_, index) => `host${index}.example.com`);
    expect(parseSubjectAltNames(names.slice(0, 100)).ok).toBe(true);
    const result = parseSubjectAltNames(names);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toEqual([expect.stringMatching(/^101 names given; a certificate may list at most 100/)]);
  });

  it("refuses duplicates after normalisation, once per name", () => {
    expect(parseSubjectAltNames(["example.com", "Example.com", "EXAMPLE.com.", "::1", "0:0::1"])).toEqual({
      ok: false,
      errors: ['"Example.com" is listed twice', '"0:0::1" is listed twice'],
    });
  });

  it("reports every invalid name, not only the first", () => {
    const result = parseSubjectAltNames(["exa mple.com", "ok.example.com", "-x.com"]);
    expect(result).toEqual({
      ok: false,
      errors: [
        '"exa mple.com" contains a space; a DNS name may only contain letters, digits, hyphens and dots',
        '"-x.com": a label may not start or end with a hyphen',
      ],
    });
  });
});

describe("splitNameList", () => {
  it("splits on newlines and commas, keeps inner spaces for validation to refuse, drops empty items", () => {
    expect(splitNameList("exa mple.com")).toEqual(["exa mple.com"]);
    expect(splitNameList(" example.com,www.example.com\r\n\n  *.example.com \t\n192.0.2.1, ,\n")).toEqual([
      "example.com",
      "www.example.com",
      "*.example.com",
      "192.0.2.1",
    ]);
  });

  it("returns nothing for blank text", () => {
    expect(splitNameList(" \n , ")).toEqual([]);
  });
});

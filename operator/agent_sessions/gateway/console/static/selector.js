// Label selectors as `kubectl get -l` takes them (the equality-based subset), applied client-side.

const KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_./]*[a-z0-9A-Z])?)$/;

/**
 * `"app=web,tier!=db,canary,!legacy"` as requirements `{key, op, value}` (op: "=", "!=",
 * "exists", "!exists"); throws an Error naming the part it cannot read.
 */
export function parseSelector(text) {
  const requirements = [];
  for (const raw of text.split(",")) {
    const part = raw.trim();
    if (!part) continue;
    let match;
    if ((match = /^([^=!\s]+)\s*(==|=|!=)\s*([^=!\s]*)$/.exec(part))) {
      requirements.push({ key: match[1], op: match[2] === "!=" ? "!=" : "=", value: match[3] });
    } else if ((match = /^!\s*([^=!\s]+)$/.exec(part))) {
      requirements.push({ key: match[1], op: "!exists" });
    } else if (KEY.test(part)) {
      requirements.push({ key: part, op: "exists" });
    } else {
      throw new Error(`cannot read "${part}": use k=v, k!=v, k or !k`);
    }
  }
  return requirements;
}

/** Whether `labels` (an object) meets every requirement. */
export function matchesSelector(requirements, labels) {
  const has = (key) => Object.prototype.hasOwnProperty.call(labels, key);
  return requirements.every(({ key, op, value }) => {
    if (op === "exists") return has(key);
    if (op === "!exists") return !has(key);
    if (op === "=") return has(key) && labels[key] === value;
    return !has(key) || labels[key] !== value;
  });
}

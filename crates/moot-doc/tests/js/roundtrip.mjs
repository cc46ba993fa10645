// The JS half of moot-doc's round trip.
//   node roundtrip.mjs load FILE   prints the text of ROOT.text of the saved document FILE as JSON
//   node roundtrip.mjs save FILE TEXT_JSON
//                                  writes a new document whose ROOT.text is TEXT_JSON (a JSON
//                                  string), then a JS-side splice at UTF-16 position 0
import { readFileSync, writeFileSync } from "node:fs";
import * as Automerge from "@automerge/automerge";

const [cmd, file, arg] = process.argv.slice(2);
if (cmd === "load") {
  const doc = Automerge.load(new Uint8Array(readFileSync(file)));
  process.stdout.write(JSON.stringify({ text: doc.text, length: doc.text.length }) + "\n");
} else if (cmd === "save") {
  let doc = Automerge.from({ text: JSON.parse(arg) });
  doc = Automerge.change(doc, (d) => Automerge.splice(d, ["text"], 0, 0, "JS:"));
  writeFileSync(file, Automerge.save(doc));
} else {
  process.stderr.write("usage: roundtrip.mjs load FILE | save FILE TEXT_JSON\n");
  process.exit(2);
}

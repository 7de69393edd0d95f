// Attachments chosen in the compose pane: each followed (shared as a tracked link, so opens are recorded)
// or not (attached to the mail itself). Files are uploaded when the message is sent, once per message.

import type { Api } from "./api";
import { h, replace, uid } from "./dom";

export interface PendingFile {
  file: File;
  followed: boolean;
  /** The message this file was uploaded to, so a retried send does not upload it twice. */
  uploadedTo: string;
  note: string;
}

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${Math.round(n / 1024)} KB`;
  return `${(n / (1 << 20)).toFixed(1)} MB`;
}

/** attachmentsPanel lets the salesperson pick files and say which are followed. */
export function attachmentsPanel(following: () => boolean): { el: HTMLElement; files: PendingFile[] } {
  const files: PendingFile[] = [];
  const input = h("input", { type: "file", name: "attachment", multiple: true, id: uid("attach") });
  const list = h("ul", { class: "attachment-list", "aria-live": "polite" });
  const draw = () => {
    replace(list);
    files.forEach((f, i) => {
      const follow = h("input", { type: "checkbox", checked: f.followed, id: uid("attach-follow") });
      follow.addEventListener("change", () => {
        f.followed = follow.checked;
        f.uploadedTo = "";
      });
      const remove = h("button", { type: "button", class: "link", "aria-label": `Remove ${f.file.name}` }, "Remove");
      remove.addEventListener("click", () => {
        files.splice(i, 1);
        draw();
      });
      list.append(
        h("li", {}, h("span", { class: "attachment-name" }, f.file.name), ` (${size(f.file.size)}) `,
          follow, h("label", { for: follow.id }, "Follow (a tracked link)"), " ", remove,
          f.note ? h("span", { class: "hint block" }, f.note) : null),
      );
    });
  };
  input.addEventListener("change", () => {
    for (const file of input.files ?? []) files.push({ file, followed: following(), uploadedTo: "", note: "" });
    input.value = "";
    draw();
  });
  const el = h(
    "fieldset",
    { class: "attachments" },
    h("legend", {}, "Attachments"),
    h("div", { class: "field" }, h("label", { for: input.id }, "Attach files"), input),
    list,
    h("p", { class: "hint" }, "Files are uploaded when you send; a reloaded page asks for them again."),
  );
  return { el, files };
}

/** uploadAll adds the files not yet on message id; Engage says in note when a followed file is attached instead. */
export async function uploadAll(api: Api, id: string, files: PendingFile[]): Promise<void> {
  for (const f of files) {
    if (f.uploadedTo === id) continue;
    const r = await api.upload<{ addAttachment: { note: string | null } }>(
      `mutation Attach($id: ID!, $file: Upload!, $followed: Boolean!) { addAttachment(messageId: $id, file: $file, followed: $followed) { id note } }`,
      { id, followed: f.followed },
      "file",
      f.file,
    );
    f.uploadedTo = id;
    f.note = r.addAttachment.note ?? "";
  }
}

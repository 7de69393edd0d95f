// Attachments chosen in the compose pane: each followed (shared as a tracked link, so opens are recorded)
// or not (attached to the mail itself). Files are uploaded when the message is sent, once per message, and
// taken off it again when they are removed or their Follow box changes before a retried send.

import { ApiError, type Api } from "./api";
import { h, replace, uid } from "./dom";

export interface PendingFile {
  file: File;
  followed: boolean;
  /** The message this file was uploaded to, so a retried send does not upload it twice. */
  uploadedTo: string;
  /** Its attachment's id on that message, to take it off again. */
  attachmentId: string;
  note: string;
}

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${Math.round(n / 1024)} KB`;
  return `${(n / (1 << 20)).toFixed(1)} MB`;
}

export interface AttachmentsPanel {
  el: HTMLFieldSetElement;
  files: PendingFile[];
  /** settled waits for the files being taken off their message, so that a send does not overtake them. */
  settled: () => Promise<void>;
}

/**
 * attachmentsPanel lets the salesperson pick files and say which are followed. A file already uploaded to
 * the message about to be sent (pending() names it) is taken off it when it is removed from the list or
 * its Follow box changes; the next send uploads it again as it now is.
 */
export function attachmentsPanel(api: Api, following: () => boolean, pending: () => string): AttachmentsPanel {
  const files: PendingFile[] = [];
  const busy = new Set<Promise<void>>();
  const input = h("input", { type: "file", name: "attachment", multiple: true, id: uid("attach") });
  const list = h("ul", { class: "attachment-list", "aria-live": "polite" });
  const err = h("p", { class: "error", role: "alert" });
  /** takeOff removes f from the message it was uploaded to, if that is the message to be sent. */
  const takeOff = (f: PendingFile): Promise<void> => {
    if (!f.uploadedTo || !f.attachmentId || f.uploadedTo !== pending()) {
      f.uploadedTo = f.attachmentId = f.note = "";
      return Promise.resolve();
    }
    const p = (async () => {
      try {
        await api.query(`mutation Detach($id: ID!) { removeAttachment(id: $id) { id } }`, { id: f.attachmentId });
      } catch (e) {
        if (!(e instanceof ApiError && e.code === "NOT_FOUND")) throw e; // already gone
      }
      f.uploadedTo = f.attachmentId = f.note = "";
    })();
    busy.add(p);
    void p.finally(() => busy.delete(p)).catch(() => {});
    return p;
  };
  const failed = (f: PendingFile, e: unknown) =>
    replace(err, `${f.file.name} could not be taken off the message: ${e instanceof Error ? e.message : String(e)}`);
  const draw = () => {
    replace(list);
    for (const f of files) {
      // Named after its file, starting with the words shown, as several files each have one.
      const follow = h("input", { type: "checkbox", checked: f.followed, id: uid("attach-follow"),
        "aria-label": `Follow (a tracked link): ${f.file.name}` });
      const note = f.note ? h("span", { class: "hint block" }, f.note) : null;
      follow.addEventListener("change", async () => {
        replace(err);
        try {
          await takeOff(f);
          f.followed = follow.checked;
          note?.remove(); // it was about the upload just taken off
        } catch (e) {
          follow.checked = f.followed;
          failed(f, e);
        }
      });
      const remove = h("button", { type: "button", class: "link", "aria-label": `Remove ${f.file.name}` }, "Remove");
      remove.addEventListener("click", async () => {
        replace(err);
        try {
          await takeOff(f);
          const i = files.indexOf(f);
          if (i >= 0) files.splice(i, 1);
          draw();
        } catch (e) {
          failed(f, e);
        }
      });
      list.append(
        h("li", {}, h("span", { class: "attachment-name" }, f.file.name), ` (${size(f.file.size)}) `,
          follow, h("label", { for: follow.id }, "Follow (a tracked link)"), " ", remove, note),
      );
    }
  };
  input.addEventListener("change", () => {
    for (const file of input.files ?? []) files.push({ file, followed: following(), uploadedTo: "", attachmentId: "", note: "" });
    input.value = "";
    draw();
  });
  const el = h(
    "fieldset",
    { class: "attachments" },
    h("legend", {}, "Attachments"),
    h("div", { class: "field" }, h("label", { for: input.id }, "Attach files"), input),
    list,
    err,
    h("p", { class: "hint" }, "Files are uploaded when you send; a reloaded page asks for them again."),
  );
  const settled = async () => {
    await Promise.allSettled([...busy]);
  };
  return { el, files, settled };
}

/** uploadAll adds the files not yet on message id; Engage says in note when a followed file is attached instead. */
export async function uploadAll(api: Api, id: string, files: PendingFile[]): Promise<void> {
  for (const f of files) {
    if (f.uploadedTo === id) continue;
    const r = await api.upload<{ addAttachment: { id: string; note: string | null } }>(
      `mutation Attach($id: ID!, $file: Upload!, $followed: Boolean!) { addAttachment(messageId: $id, file: $file, followed: $followed) { id note } }`,
      { id, followed: f.followed },
      "file",
      f.file,
    );
    f.uploadedTo = id;
    f.attachmentId = r.addAttachment.id;
    f.note = r.addAttachment.note ?? "";
  }
}

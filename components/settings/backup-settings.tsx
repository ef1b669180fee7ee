"use client";

import { useState } from "react";
import { fetchFile, type FieldErrors } from "@/components/forms/api";
import { notSent, useApiSubmit } from "@/components/forms/use-api-submit";
import { Button } from "@/components/ui/button";
import { FormMessage, TextField } from "@/components/ui/field";

const MIN_PASSPHRASE = 12;

/** Settings → Backup: what a backup holds, the download (password again + passphrase), and how to restore. */
export function BackupSettings({ isAdmin, database, keySource }: { isAdmin: boolean; database: string; keySource: string }) {
  const { pending, errors, message, setMessage, submit } = useApiSubmit();
  const [formKey, setFormKey] = useState(0);

  function download(form: FormData) {
    const password = String(form.get("password") ?? "");
    const passphrase = String(form.get("passphrase") ?? "");
    const repeat = String(form.get("passphraseRepeat") ?? "");
    const local: FieldErrors = {};
    if (!password) local.password = ["type your password again"];
    if (passphrase.length < MIN_PASSPHRASE) local.passphrase = [`use at least ${MIN_PASSPHRASE} characters`];
    else if (repeat !== passphrase) local.passphraseRepeat = ["the two passphrases differ"];
    return submit(
      async () => (Object.keys(local).length ? notSent("no backup was made: check the highlighted fields", local) : fetchFile("POST", "/api/v1/backup", { password, passphrase })),
      ({ blob, fileName }) => {
        const name = fileName ?? "portcullis-backup.pcbk";
        const url = URL.createObjectURL(blob);
        const link = document.createElement("a");
        link.href = url;
        link.download = name;
        document.body.appendChild(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
        setFormKey((k) => k + 1);
        setMessage({ text: `Backup downloaded: ${name} (${Math.max(1, Math.round(blob.size / 1024))} KiB). Keep the passphrase somewhere safe: without it the backup cannot be restored.`, tone: "success" });
      },
    );
  }

  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold">Backup</h1>
        <p className="mt-1 max-w-3xl text-sm text-slate-600">
          A backup is one encrypted file with everything in the database ({database}): certificates with their private keys and every version, listeners and their hostname mappings, ACME
          accounts with their keys and External Account Binding keys, DNS credentials, webhooks, users and API tokens (hashes only), settings including the console&apos;s local CA, events and the
          audit log. Every secret in it is sealed under your backup passphrase instead of this installation&apos;s key ({keySource}), so the file can be restored on a new machine, on SQLite or
          PostgreSQL, without that key.
        </p>
      </div>

      {isAdmin ? (
        <form
          key={formKey}
          onSubmit={(e) => {
            e.preventDefault();
            void download(new FormData(e.currentTarget));
          }}
          className="max-w-2xl space-y-5 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200"
          noValidate
          data-testid="backup-form"
        >
          <h2 className="text-lg font-semibold">Download a backup</h2>
          <TextField name="password" type="password" label="Your password" autoComplete="current-password" errors={errors.password} hint="Typed again, so that only you can take a copy of every secret." />
          <TextField
            name="passphrase"
            type="password"
            label="Backup passphrase"
            autoComplete="new-password"
            errors={errors.passphrase}
            hint={`At least ${MIN_PASSPHRASE} characters. It encrypts the file; it is not stored anywhere, and a lost passphrase cannot be recovered.`}
          />
          <TextField name="passphraseRepeat" type="password" label="Repeat the backup passphrase" autoComplete="new-password" errors={errors.passphraseRepeat} />
          <FormMessage message={message?.text} tone={message?.tone} />
          <Button type="submit" disabled={pending}>
            {pending ? "Preparing the backup…" : "Download backup"}
          </Button>
        </form>
      ) : (
        <p className="rounded-lg bg-white px-4 py-6 text-sm text-slate-600 ring-1 ring-slate-200" data-testid="backup-admins-only">
          Backups hold every private key and secret, so only admins can download them. Ask an admin for a backup.
        </p>
      )}

      <section className="max-w-3xl rounded-lg bg-white p-4 text-sm ring-1 ring-slate-200" aria-labelledby="restore-heading">
        <h2 id="restore-heading" className="mb-2 font-semibold">
          Restoring
        </h2>
        <p className="text-slate-600">
          Restore is done from the command line on the machine that will run Portcullis, into an empty database (the schema is created first). Every secret is sealed again under that
          installation&apos;s key. A wrong passphrase, a damaged file or a backup from a newer version is refused and nothing is changed.
        </p>
        <pre className="mt-2 overflow-x-auto rounded bg-slate-900 p-3 font-mono text-xs text-slate-100">
          {"PORTCULLIS_BACKUP_PASSPHRASE='…' portcullis backup restore portcullis-backup.pcbk\n# a database that already has data: add --force to replace it\n# scripted backups: portcullis backup create --out /backups/portcullis.pcbk"}
        </pre>
      </section>
    </div>
  );
}

import { ALERT_EVENT_LABELS, ALERT_EVENT_TYPES, type AlertEventType } from "@/lib/alerts/constants";

/** The event types a webhook receives: one labelled checkbox each. */
export function AlertEventTypesField({ idPrefix, selected, errors }: { idPrefix: string; selected: readonly AlertEventType[]; errors?: string[] }) {
  return (
    <fieldset className="space-y-1" aria-describedby={`${idPrefix}-types-error`}>
      <legend className="text-sm font-medium text-slate-800">Event types</legend>
      {ALERT_EVENT_TYPES.map((type) => (
        <label key={type} className="flex items-center gap-2 text-sm">
          <input type="checkbox" name="eventTypes" value={type} defaultChecked={selected.includes(type)} className="h-4 w-4 rounded border-slate-300" />
          <span className="font-mono text-xs">{type}</span>
          <span className="text-slate-600">{ALERT_EVENT_LABELS[type]}</span>
        </label>
      ))}
      <div id={`${idPrefix}-types-error`} aria-live="polite">
        {errors?.map((e) => (
          <p key={e} className="text-sm text-red-600">
            {e}
          </p>
        ))}
      </div>
    </fieldset>
  );
}

export function eventTypesFrom(form: FormData): string[] {
  return form.getAll("eventTypes").map(String);
}

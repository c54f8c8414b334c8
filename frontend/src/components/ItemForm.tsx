import { useId, useState, type FormEvent } from 'react';
import { asApiError, type ApiError, type FieldErrors } from '../api/errors';
import type { Item, ItemDraft } from '../api/types';
import { priceInputValue } from '../format';
import { DESCRIPTION_MAX, itemProblems, type ItemFormValues } from '../validation';
import { ErrorMessage } from './ErrorMessage';
import { FieldError, fieldDescription } from './FieldError';

const FIELDS = ['name', 'description', 'price', 'is_available'] as const;

interface ItemFormProps {
  /** The item being edited; absent for a new one. */
  item?: Item;
  submitLabel: string;
  /** Sends the draft; an ApiError thrown here is shown by the fields it names. */
  onSubmit: (draft: ItemDraft) => Promise<unknown>;
  onCancel: () => void;
}

/** Create or edit an item. Always submits every field, which is what PUT and POST expect. */
export function ItemForm({ item, submitLabel, onSubmit, onCancel }: ItemFormProps) {
  const prefix = useId();
  const ids = Object.fromEntries(FIELDS.map((field) => [field, `${prefix}-${field}`])) as Record<
    (typeof FIELDS)[number],
    string
  >;
  const [values, setValues] = useState<ItemFormValues>(() => initialValues(item));
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  function update<K extends keyof ItemFormValues>(field: K, value: ItemFormValues[K]) {
    setValues((current) => ({ ...current, [field]: value }));
    // An error describes the old value; drop it as soon as the person edits.
    setFieldErrors(({ [field]: _old, ...rest }) => rest);
  }

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const problems = itemProblems(values);
    setFailure(null);
    setFieldErrors(problems);
    if (Object.keys(problems).length > 0) {
      focusFirstInvalid(problems, ids);
      return;
    }
    setBusy(true);
    try {
      await onSubmit(toDraft(values));
    } catch (caught) {
      const error = asApiError(caught);
      setFailure(error);
      setFieldErrors(error.fieldErrors);
      focusFirstInvalid(error.fieldErrors, ids);
      setBusy(false);
    }
  }

  return (
    <form className="form" onSubmit={submit} noValidate aria-busy={busy}>
      <div className="field">
        <label htmlFor={ids.name}>Name</label>
        <input
          {...fieldDescription(ids.name, fieldErrors.name)}
          type="text"
          value={values.name}
          onChange={(event) => update('name', event.target.value)}
          required
          autoComplete="off"
        />
        <FieldError fieldId={ids.name} message={fieldErrors.name} />
      </div>

      <div className="field">
        <label htmlFor={ids.description}>Description</label>
        <textarea
          {...fieldDescription(ids.description, fieldErrors.description, `${ids.description}-hint`)}
          rows={3}
          value={values.description}
          onChange={(event) => update('description', event.target.value)}
        />
        <p id={`${ids.description}-hint`} className="hint">
          Optional, up to {DESCRIPTION_MAX.toLocaleString()} characters.
        </p>
        <FieldError fieldId={ids.description} message={fieldErrors.description} />
      </div>

      <div className="field">
        <label htmlFor={ids.price}>Price</label>
        <input
          {...fieldDescription(ids.price, fieldErrors.price, `${ids.price}-hint`)}
          type="text"
          inputMode="decimal"
          value={values.price}
          onChange={(event) => update('price', event.target.value)}
          required
          autoComplete="off"
        />
        <p id={`${ids.price}-hint`} className="hint">
          For example 12 or 12.50, at most two decimals.
        </p>
        <FieldError fieldId={ids.price} message={fieldErrors.price} />
      </div>

      <div className="field field-checkbox">
        <input
          {...fieldDescription(ids.is_available, fieldErrors.is_available)}
          type="checkbox"
          checked={values.is_available}
          onChange={(event) => update('is_available', event.target.checked)}
        />
        <label htmlFor={ids.is_available}>Available</label>
        <FieldError fieldId={ids.is_available} message={fieldErrors.is_available} />
      </div>

      <ErrorMessage error={failure} />

      <div className="button-row">
        <button type="submit" className="button primary" disabled={busy}>
          {submitLabel}
        </button>
        <button type="button" className="button secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function initialValues(item: Item | undefined): ItemFormValues {
  return {
    name: item?.name ?? '',
    description: item?.description ?? '',
    price: item ? priceInputValue(item.price) : '',
    is_available: item?.is_available ?? true,
  };
}

function toDraft(values: ItemFormValues): ItemDraft {
  return {
    name: values.name.trim(),
    // An emptied description means "no description", which the API stores as null.
    description: values.description.trim() === '' ? null : values.description,
    price: values.price.trim(),
    is_available: values.is_available,
  };
}

function focusFirstInvalid(errors: FieldErrors, ids: Record<string, string>) {
  const first = FIELDS.find((field) => errors[field]);
  if (first) document.getElementById(ids[first] ?? '')?.focus();
}

/** The id of a field's error text, so the input can point at it with aria-describedby. */
export function errorIdFor(fieldId: string): string {
  return `${fieldId}-error`;
}

/**
 * Accessibility attributes for an input: invalid state plus the ids of the texts
 * that describe it (its error first, then any hint).
 */
export function fieldDescription(fieldId: string, error: string | undefined, hintId?: string) {
  const describedBy = [error ? errorIdFor(fieldId) : null, hintId ?? null].filter(Boolean).join(' ');
  return {
    id: fieldId,
    'aria-invalid': error ? true : undefined,
    'aria-describedby': describedBy || undefined,
  } as const;
}

export function FieldError({ fieldId, message }: { fieldId: string; message: string | undefined }) {
  if (!message) return null;
  return (
    <p id={errorIdFor(fieldId)} className="field-error">
      {message}
    </p>
  );
}

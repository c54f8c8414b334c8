import { useState, type FormEvent } from 'react';
import { createUser } from '../api/endpoints';
import { asApiError, type ApiError, type FieldErrors } from '../api/errors';
import type { Role, User, UserCreate } from '../api/types';
import { PASSWORD_BYTES, registrationProblems, utf8Length } from '../validation';
import { ErrorMessage } from './ErrorMessage';
import { FieldError, fieldDescription } from './FieldError';

const FIELD_ORDER = ['email', 'username', 'password', 'role'] as const;
const EMPTY: UserCreate = { email: '', username: '', password: '', role: 'user' };

/** Admin-only registration, checking the API's rules before anything is sent. */
interface RegistrationFormProps {
  onCreated: (user: User) => void;
  /** Called when a new attempt starts, so an older success message can go. */
  onSubmit?: () => void;
}

export function RegistrationForm({ onCreated, onSubmit }: RegistrationFormProps) {
  const [values, setValues] = useState<UserCreate>(EMPTY);
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const passwordBytes = utf8Length(values.password);

  function update(field: keyof UserCreate, value: string) {
    setValues((current) => ({ ...current, [field]: value }));
    setFieldErrors(({ [field]: _old, ...rest }) => rest);
  }

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    onSubmit?.();
    const problems = registrationProblems(values);
    setFieldErrors(problems);
    setFailure(null);
    if (Object.keys(problems).length > 0) {
      focusFirst(problems);
      return;
    }
    setBusy(true);
    try {
      const created = await createUser({ ...values, email: values.email.trim() });
      setValues(EMPTY);
      onCreated(created);
    } catch (caught) {
      const error = asApiError(caught);
      const errors = { ...error.fieldErrors, ...conflictField(error) };
      setFailure(error);
      setFieldErrors(errors);
      focusFirst(errors);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="form" onSubmit={submit} noValidate aria-busy={busy} aria-labelledby="register-title">
      <h2 id="register-title">Register a user</h2>
      <div className="field">
        <label htmlFor="register-email">Email</label>
        <input
          {...fieldDescription('register-email', fieldErrors.email)}
          type="email"
          autoComplete="off"
          value={values.email}
          onChange={(event) => update('email', event.target.value)}
          required
        />
        <FieldError fieldId="register-email" message={fieldErrors.email} />
      </div>
      <div className="field">
        <label htmlFor="register-username">Username</label>
        <input
          {...fieldDescription('register-username', fieldErrors.username, 'register-username-hint')}
          type="text"
          autoComplete="off"
          autoCapitalize="none"
          spellCheck={false}
          value={values.username}
          onChange={(event) => update('username', event.target.value)}
          required
        />
        <p id="register-username-hint" className="hint">
          3 to 50 characters: letters, digits, “_”, “.” or “-”.
        </p>
        <FieldError fieldId="register-username" message={fieldErrors.username} />
      </div>
      <div className="field">
        <label htmlFor="register-password">Password</label>
        <input
          {...fieldDescription('register-password', fieldErrors.password, 'register-password-hint')}
          type="password"
          autoComplete="new-password"
          value={values.password}
          onChange={(event) => update('password', event.target.value)}
          required
        />
        <p id="register-password-hint" className="hint">
          {PASSWORD_BYTES.min} to {PASSWORD_BYTES.max} bytes; accented letters and emoji count as several. Now{' '}
          {passwordBytes} {passwordBytes === 1 ? 'byte' : 'bytes'}.
        </p>
        <FieldError fieldId="register-password" message={fieldErrors.password} />
      </div>
      <div className="field">
        <label htmlFor="register-role">Role</label>
        <select
          {...fieldDescription('register-role', fieldErrors.role)}
          value={values.role}
          onChange={(event) => update('role', event.target.value as Role)}
        >
          <option value="user">User</option>
          <option value="admin">Admin</option>
        </select>
        <FieldError fieldId="register-role" message={fieldErrors.role} />
      </div>
      <ErrorMessage error={failure} />
      <div className="button-row">
        <button type="submit" className="button primary" disabled={busy}>
          Create user
        </button>
      </div>
    </form>
  );
}

/** 409s name the clashing field only in prose ("Email already registered"). */
export function conflictField(error: ApiError): FieldErrors {
  if (error.status !== 409) return {};
  if (/email/i.test(error.detail)) return { email: `${error.detail}.` };
  if (/username/i.test(error.detail)) return { username: `${error.detail}.` };
  return {};
}

function focusFirst(errors: FieldErrors) {
  const first = FIELD_ORDER.find((field) => errors[field]);
  if (first) document.getElementById(`register-${first}`)?.focus();
}

import { humanMessage, type ApiError } from '../api/errors';

interface ErrorMessageProps {
  error: ApiError | null;
  /** Replaces the generic sentence when the caller knows better (e.g. sign-in's 401). */
  message?: string;
}

/** A failed request, explained, with the request id that finds it in the server logs. */
export function ErrorMessage({ error, message }: ErrorMessageProps) {
  if (!error) return null;
  return (
    <div role="alert" className="error-message">
      <p>{message ?? humanMessage(error)}</p>
      {error.requestId && (
        <p className="request-id">
          Request id: <code>{error.requestId}</code>
        </p>
      )}
    </div>
  );
}

import { useId, useState } from 'react';
import { asApiError, type ApiError } from '../api/errors';
import { ErrorMessage } from './ErrorMessage';
import { Modal } from './Modal';

interface ConfirmDialogProps {
  open: boolean;
  title: string;
  message: string;
  confirmLabel: string;
  /** May throw; the error is shown in the dialog, which then stays open. */
  onConfirm: () => Promise<void>;
  onCancel: () => void;
}

/** Asks before something that cannot be undone. Cancel has focus first: the safe choice. */
export function ConfirmDialog({ open, title, message, confirmLabel, onConfirm, onCancel }: ConfirmDialogProps) {
  const titleId = useId();
  return (
    <Modal open={open} onClose={onCancel} labelledBy={titleId}>
      <ConfirmBody titleId={titleId} {...{ title, message, confirmLabel, onConfirm, onCancel }} />
    </Modal>
  );
}

function ConfirmBody({
  titleId,
  title,
  message,
  confirmLabel,
  onConfirm,
  onCancel,
}: Omit<ConfirmDialogProps, 'open'> & { titleId: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function confirm() {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
    } catch (caught) {
      setError(asApiError(caught));
      setBusy(false);
    }
  }

  return (
    <div className="modal-body">
      <h2 id={titleId}>{title}</h2>
      <p>{message}</p>
      <ErrorMessage error={error} />
      <div className="button-row">
        <button type="button" className="button danger" onClick={confirm} disabled={busy} aria-busy={busy}>
          {confirmLabel}
        </button>
        <button type="button" className="button secondary" onClick={onCancel} autoFocus>
          Cancel
        </button>
      </div>
    </div>
  );
}

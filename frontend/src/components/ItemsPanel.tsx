import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { createItem, deleteItem, listItems, patchItem, replaceItem } from '../api/endpoints';
import { asApiError, type ApiError } from '../api/errors';
import type { Item, ItemDraft } from '../api/types';
import { useAuth } from '../auth/AuthProvider';
import { SIGNED_OUT_REASON } from '../auth/permissions';
import { SIGN_IN_PATH } from '../auth/RequireAuth';
import { ownerIdProblem } from '../validation';
import { ConfirmDialog } from './ConfirmDialog';
import { ErrorMessage } from './ErrorMessage';
import { FieldError, fieldDescription } from './FieldError';
import { ItemForm } from './ItemForm';
import { ItemsTable, type SortOrder } from './ItemsTable';
import { Modal } from './Modal';
import { PAGE_SIZES, Pager } from './Pager';

interface ItemsView {
  page: number;
  size: number;
  ownerId: number | undefined;
  order: SortOrder;
}

type Editing = { mode: 'create' } | { mode: 'edit'; item: Item } | null;

/**
 * Items with paging, owner filter, sorting and create/edit/delete. Its view state
 * lives in the URL (?page=2&size=25&owner=1&order=desc) so reloads and the back
 * button keep the person's place.
 */
export function ItemsPanel({ headingLevel }: { headingLevel: 1 | 2 }) {
  const { user } = useAuth();
  const [params, setParams] = useSearchParams();
  const view = readView(params);
  const [rows, setRows] = useState<Item[] | null>(null);
  const [hasNext, setHasNext] = useState(false);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const [reloads, setReloads] = useState(0);
  const [editing, setEditing] = useState<Editing>(null);
  const [deleting, setDeleting] = useState<Item | null>(null);
  const [busyIds, setBusyIds] = useState<ReadonlySet<number>>(new Set());
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [notice, setNotice] = useState('');
  const ids = { heading: useId(), signedOut: useId(), dialog: useId() };
  const Heading = headingLevel === 1 ? 'h1' : 'h2';

  const changeView = useCallback(
    (change: Partial<ItemsView>) => setParams((current) => writeView({ ...readView(current), ...change }), { replace: false }),
    [setParams],
  );

  useEffect(() => {
    const controller = new AbortController();
    setLoadError(null);
    // One row more than the page shows: its presence is how we know a next page exists.
    listItems(
      { skip: (view.page - 1) * view.size, limit: view.size + 1, ownerId: view.ownerId, order: view.order },
      controller.signal,
    )
      .then((items) => {
        setRows(items.slice(0, view.size));
        setHasNext(items.length > view.size);
      })
      .catch((error: unknown) => {
        if (controller.signal.aborted) return;
        setRows(null);
        setLoadError(asApiError(error));
      });
    return () => controller.abort();
  }, [view.page, view.size, view.ownerId, view.order, reloads]);

  const reload = () => setReloads((count) => count + 1);

  async function save(draft: ItemDraft) {
    if (editing?.mode === 'edit') {
      await replaceItem(editing.item.id, draft);
      setNotice(`Saved “${draft.name}”.`);
    } else {
      await createItem(draft);
      setNotice(`Created “${draft.name}”.`);
    }
    setEditing(null);
    reload();
  }

  async function toggleAvailability(item: Item) {
    setActionError(null);
    setBusyIds((current) => new Set(current).add(item.id));
    try {
      await patchItem(item.id, { is_available: !item.is_available });
      setNotice(`“${item.name}” is now ${item.is_available ? 'unavailable' : 'available'}.`);
      reload();
    } catch (error) {
      setActionError(asApiError(error));
    } finally {
      setBusyIds((current) => {
        const next = new Set(current);
        next.delete(item.id);
        return next;
      });
    }
  }

  async function confirmDelete() {
    if (!deleting) return;
    await deleteItem(deleting.id);
    setNotice(`Deleted “${deleting.name}”.`);
    setDeleting(null);
    reload();
  }

  return (
    <section className="card items-panel" aria-labelledby={ids.heading}>
      <div className="card-header">
        <Heading id={ids.heading}>Items</Heading>
        <button
          type="button"
          className="button primary"
          onClick={() => setEditing({ mode: 'create' })}
          disabled={!user}
          title={user ? undefined : SIGNED_OUT_REASON}
          aria-describedby={user ? undefined : ids.signedOut}
        >
          New item
        </button>
      </div>

      {!user && (
        <p className="notice">
          <span id={ids.signedOut}>{SIGNED_OUT_REASON}</span> <Link to={SIGN_IN_PATH}>Go to sign-in</Link>
        </p>
      )}

      <OwnerFilter
        ownerId={view.ownerId}
        myId={user?.id}
        serverProblem={loadError?.fieldErrors.owner_id}
        onChange={(ownerId) => changeView({ ownerId, page: 1 })} />

      <p role="status" className="success">
        {notice}
      </p>
      <ErrorMessage error={actionError} />
      <ErrorMessage error={loadError} />
      {loadError && (
        <button type="button" className="button secondary small" onClick={reload}>
          Try again
        </button>
      )}

      {rows === null && !loadError && <p className="muted">Loading items…</p>}
      {rows && rows.length === 0 && (
        <p className="empty">{view.page > 1 ? 'No items on this page.' : 'No items found.'}</p>
      )}
      {rows && rows.length > 0 && (
        <>
          <ItemsTable
            items={rows}
            user={user}
            order={view.order}
            onToggleOrder={() => changeView({ order: view.order === 'asc' ? 'desc' : 'asc', page: 1 })}
            onEdit={(item) => setEditing({ mode: 'edit', item })}
            onToggleAvailability={toggleAvailability}
            onDelete={setDeleting}
            busyIds={busyIds}
            signedOutReasonId={ids.signedOut}
          />
          <p className="hint">
            Sorted by ID, {view.order === 'asc' ? 'oldest first' : 'newest first'}.
          </p>
        </>
      )}

      <Pager
        label="Items pages"
        page={view.page}
        pageSize={view.size}
        hasNext={hasNext}
        onPage={(page) => changeView({ page })}
        onPageSize={(size) => changeView({ size, page: 1 })}
      />

      <Modal open={editing !== null} onClose={() => setEditing(null)} labelledBy={ids.dialog}>
        <div className="modal-body">
          <h2 id={ids.dialog}>{editing?.mode === 'edit' ? `Edit “${editing.item.name}”` : 'New item'}</h2>
          <ItemForm
            item={editing?.mode === 'edit' ? editing.item : undefined}
            submitLabel={editing?.mode === 'edit' ? 'Save changes' : 'Create item'}
            onSubmit={save}
            onCancel={() => setEditing(null)}
          />
        </div>
      </Modal>

      <ConfirmDialog
        open={deleting !== null}
        title="Delete item?"
        message={deleting ? `“${deleting.name}” (ID ${deleting.id}) will be deleted. This cannot be undone.` : ''}
        confirmLabel="Delete"
        onConfirm={confirmDelete}
        onCancel={() => setDeleting(null)}
      />
    </section>
  );
}

interface OwnerFilterProps {
  ownerId: number | undefined;
  /** The signed-in person's id, for the "My items" shortcut. */
  myId: number | undefined;
  /** The API's 422 message about `owner_id`, if the last load was refused. */
  serverProblem: string | undefined;
  onChange: (ownerId: number | undefined) => void;
}

function OwnerFilter({ ownerId, myId, serverProblem, onChange }: OwnerFilterProps) {
  const inputId = useId();
  const [text, setText] = useState(ownerId?.toString() ?? '');
  const [localProblem, setProblem] = useState<string | undefined>();
  const problem = localProblem ?? serverProblem;

  // Follow the URL when it changes underneath us (back button, "My items").
  useEffect(() => setText(ownerId?.toString() ?? ''), [ownerId]);

  function apply(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const found = ownerIdProblem(text) ?? undefined;
    setProblem(found);
    if (!found) onChange(text.trim() === '' ? undefined : Number(text.trim()));
  }

  return (
    <form className="filter" onSubmit={apply} noValidate role="search" aria-label="Filter items">
      <div className="field">
        <label htmlFor={inputId}>Owner ID</label>
        <input
          {...fieldDescription(inputId, problem)}
          type="text"
          inputMode="numeric"
          value={text}
          onChange={(event) => {
            setText(event.target.value);
            setProblem(undefined);
          }}
          placeholder="Any owner"
          size={10}
        />
        <FieldError fieldId={inputId} message={problem} />
      </div>
      <div className="button-row">
        <button type="submit" className="button secondary small">
          Apply filter
        </button>
        <button
          type="button"
          className="button secondary small"
          onClick={() => {
            setProblem(undefined);
            onChange(undefined);
          }}
          disabled={ownerId === undefined}
        >
          Clear filter
        </button>
        {myId !== undefined && (
          <button
            type="button"
            className="button secondary small"
            onClick={() => onChange(myId)}
            disabled={ownerId === myId}
          >
            My items
          </button>
        )}
      </div>
    </form>
  );
}

function readView(params: URLSearchParams): ItemsView {
  const page = Number(params.get('page'));
  const size = Number(params.get('size'));
  const owner = params.get('owner') ?? '';
  return {
    page: Number.isInteger(page) && page >= 1 ? page : 1,
    size: (PAGE_SIZES as readonly number[]).includes(size) ? size : PAGE_SIZES[0],
    ownerId: owner !== '' && ownerIdProblem(owner) === null ? Number(owner) : undefined,
    order: params.get('order') === 'desc' ? 'desc' : 'asc',
  };
}

function writeView(view: ItemsView): URLSearchParams {
  const params = new URLSearchParams();
  // Defaults stay out of the URL so the plain address means the plain view.
  if (view.page !== 1) params.set('page', String(view.page));
  if (view.size !== PAGE_SIZES[0]) params.set('size', String(view.size));
  if (view.ownerId !== undefined) params.set('owner', String(view.ownerId));
  if (view.order !== 'asc') params.set('order', view.order);
  return params;
}
